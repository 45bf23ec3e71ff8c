// PCI bridge slot bookkeeping for hot-plugged devices (spec §4) and PCI paths (spec §1).
// - Map bridge id → {slot → device id}, created with `default_bridges` empty bridges.
// - Slots 1..=30 are hot-pluggable; bridges are visited in numeric order of their suffix.
// - Gap §12.1 fixed: `addr` is written as QEMU parses it, two lowercase hex digits.
// - Gap §12.2 fixed: `release` frees the slot when the device is gone.
import { InvalidInputError } from '../../../../types/errors.ts'
import { HotplugError } from './hotplug-errors.ts'

export const FIRST_HOTPLUG_SLOT = 1
export const LAST_HOTPLUG_SLOT = 30
export const PCI_BRIDGE_PREFIX = 'pci-bridge-'

/** `hex` writes `%02x` (QEMU's parse); `upstream-decimal` reproduces runtime-rs `{:02}` (gap §12.1). */
export type PciAddrFormat = 'hex' | 'upstream-decimal'

export function formatPciAddr(slot: number, format: PciAddrFormat = 'hex'): string {
  if (!Number.isInteger(slot) || slot < 0 || slot > 31) throw new InvalidInputError('PCI slot', `must be 0..31, got ${slot}`)
  return format === 'hex' ? slot.toString(16).padStart(2, '0') : String(slot).padStart(2, '0')
}

export interface FreeSlot {
  bridgeId: string
  slot: number
}

export class PciBridgeSlots {
  private readonly bridges = new Map<string, Map<number, string>>()

  /** `count` empty bridges `pci-bridge-0..count-1` (spec §2). */
  constructor(count: number) {
    if (!Number.isInteger(count) || count < 0) throw new InvalidInputError('default_bridges', `must be a non-negative integer, got ${count}`)
    for (let n = 0; n < count; n++) this.bridges.set(`${PCI_BRIDGE_PREFIX}${n}`, new Map())
  }

  /** First free slot in the in-memory map, bridges in numeric suffix order. */
  findFree(): FreeSlot | undefined {
    for (const bridgeId of this.bridgeIds()) {
      const used = this.bridges.get(bridgeId)!
      for (let slot = FIRST_HOTPLUG_SLOT; slot <= LAST_HOTPLUG_SLOT; slot++) if (!used.has(slot)) return { bridgeId, slot }
    }
    return undefined
  }

  /** Record `deviceId` at `slot` of `bridgeId` (creates the bridge entry if it came from query-pci). */
  record(bridgeId: string, slot: number, deviceId: string): void {
    let m = this.bridges.get(bridgeId)
    if (!m) this.bridges.set(bridgeId, (m = new Map()))
    m.set(slot, deviceId)
  }

  /** Free the slot held by `deviceId` (gap §12.2 fix). Returns where it was, if anywhere. */
  release(deviceId: string): FreeSlot | undefined {
    const at = this.find(deviceId)
    if (at) this.bridges.get(at.bridgeId)!.delete(at.slot)
    return at
  }

  /** Where `deviceId` is recorded. */
  find(deviceId: string): FreeSlot | undefined {
    for (const [bridgeId, m] of this.bridges) for (const [slot, id] of m) if (id === deviceId) return { bridgeId, slot }
    return undefined
  }

  bridgeIds(): string[] {
    return [...this.bridges.keys()].sort((a, b) => bridgeSuffix(a) - bridgeSuffix(b))
  }

  /** Copy of one bridge's slot map. */
  slotsOf(bridgeId: string): Map<number, string> {
    return new Map(this.bridges.get(bridgeId) ?? [])
  }
}

function bridgeSuffix(id: string): number {
  const n = Number(id.slice(PCI_BRIDGE_PREFIX.length))
  return Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER
}

// ---- query-pci ------------------------------------------------------------------------------

export interface QueryPciDevice {
  slot: number
  function?: number
  qdev_id?: string
  pci_bridge?: { bus?: unknown; devices?: QueryPciDevice[] }
}
export interface QueryPciBus {
  bus: number
  devices: QueryPciDevice[]
}

/** PCI path of `qdevId`: slots from the root, two lowercase hex digits each, joined by `/`. */
export function pciPathOf(info: QueryPciBus[], qdevId: string): string {
  for (const bus of info) {
    const p = walk(bus.devices, qdevId, [])
    if (p) return p.map((s) => s.toString(16).padStart(2, '0')).join('/')
  }
  throw new HotplugError('no target device found', { qdevId })
}

function walk(devices: QueryPciDevice[], qdevId: string, prefix: number[]): number[] | undefined {
  for (const d of devices) {
    const here = [...prefix, d.slot]
    if (d.qdev_id === qdevId) return here
    const below = d.pci_bridge?.devices
    if (below) {
      const found = walk(below, qdevId, here)
      if (found) return found
    }
  }
  return undefined
}

/** Fallback search (spec §4): bridges seen in query-pci (qdev id `pci-bridge-*`), first slot 1..=30 unused there. */
export function findFreeSlotInQueryPci(info: QueryPciBus[]): FreeSlot | undefined {
  const bridges: QueryPciDevice[] = []
  const collect = (devs: QueryPciDevice[]): void => {
    for (const d of devs) {
      if (d.qdev_id?.startsWith(PCI_BRIDGE_PREFIX)) bridges.push(d)
      if (d.pci_bridge?.devices) collect(d.pci_bridge.devices)
    }
  }
  for (const bus of info) collect(bus.devices)
  for (const b of bridges) {
    const used = new Set((b.pci_bridge?.devices ?? []).map((d) => d.slot))
    for (let slot = FIRST_HOTPLUG_SLOT; slot <= LAST_HOTPLUG_SLOT; slot++) if (!used.has(slot)) return { bridgeId: b.qdev_id!, slot }
  }
  return undefined
}
