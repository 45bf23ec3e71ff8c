// PCI addressing helpers (spec §3; upstream src/agent/src/pci.rs, device/mod.rs).
import { readdir, stat } from 'node:fs/promises'
import { Code, KatarefError } from '../../types/errors.ts'

export class PciError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super(message, Code.INVALID_ARGUMENT, context)
  }
}

export interface PciSlotFn {
  slot: number
  fn: number
}
export interface PciAddress extends PciSlotFn {
  domain: number
  bus: number
}

const hex = (s: string, what: string, max: number): number => {
  if (!/^[0-9a-fA-F]+$/.test(s)) throw new PciError(`invalid ${what} ${JSON.stringify(s)}`)
  const n = parseInt(s, 16)
  if (n > max) throw new PciError(`${what} ${JSON.stringify(s)} out of range (max 0x${max.toString(16)})`)
  return n
}

/** `SS[.F]` (hex); SS alone means function 0. */
export function parseSlotFn(s: string): PciSlotFn {
  const [slot, fn, extra] = s.split('.')
  if (extra !== undefined || slot === undefined) throw new PciError(`invalid PCI slot/function ${JSON.stringify(s)}`)
  return { slot: hex(slot, 'PCI slot', 0x1f), fn: fn === undefined ? 0 : hex(fn, 'PCI function', 7) }
}

export function formatSlotFn(s: PciSlotFn): string {
  return `${s.slot.toString(16).padStart(2, '0')}.${s.fn.toString(16)}`
}

/** `DDDD:BB:SS.F`. */
export function parsePciAddress(s: string): PciAddress {
  const m = /^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,2}):([0-9a-fA-F.]+)$/.exec(s)
  if (!m) throw new PciError(`invalid PCI address ${JSON.stringify(s)}`)
  return { domain: hex(m[1]!, 'PCI domain', 0xffff), bus: hex(m[2]!, 'PCI bus', 0xff), ...parseSlotFn(m[3]!) }
}

export function formatPciAddress(a: PciAddress): string {
  return `${a.domain.toString(16).padStart(4, '0')}:${a.bus.toString(16).padStart(2, '0')}:${formatSlotFn(a)}`
}

/** PCI path `02/01[.f]…`: at least one element. */
export function parsePciPath(s: string): PciSlotFn[] {
  if (s === '') throw new PciError('empty PCI path')
  return s.split('/').map(parseSlotFn)
}

/** Device tree path → root complex (2 hex digits) + PCI path: a first segment ≥ 0x20 among ≥ 3 is a pxb-pcie root complex. */
export function deviceTreeToPciPath(s: string): { rootComplex: string; path: PciSlotFn[] } {
  const segs = s.split('/')
  if (segs.length >= 3 && /^[0-9a-fA-F]+$/.test(segs[0]!) && parseInt(segs[0]!, 16) >= 0x20) {
    return { rootComplex: segs[0]!.toLowerCase().padStart(2, '0'), path: parsePciPath(segs.slice(1).join('/')) }
  }
  return { rootComplex: '00', path: parsePciPath(s) }
}

/** Root bus sysfs path (x86_64 form; aarch64 probing is not needed in this guest). */
export function rootBusPath(rootComplex = '00', arch: string = process.arch, sysfsHas?: (p: string) => boolean): string {
  if (arch === 'arm64') {
    if (sysfsHas?.(`/sys/devices/pci0000:${rootComplex}`)) return `/devices/pci0000:${rootComplex}`
    return `/devices/platform/4010000000.pcie/pci0000:${rootComplex}`
  }
  return `/devices/pci0000:${rootComplex}`
}

const PCI_ADDR_NAME = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/

/**
 * pcipath_to_sysfs: starts at bus 0000:00; appends `/<bus>:<slot.fn>` per element; the bus behind each
 * non-final element comes from the bridge's `pci_bus/` (exactly one entry) or, without it, from the
 * PCI-address-named child directories (all on one bus). Returns the relative sysfs path.
 */
export async function pcipathToSysfs(sysRoot: string, rootBus: string, path: PciSlotFn[]): Promise<string> {
  if (path.length === 0) throw new PciError('empty PCI path')
  let bus = '0000:00'
  let rel = ''
  for (const [i, el] of path.entries()) {
    rel += `/${bus}:${formatSlotFn(el)}`
    if (i === path.length - 1) break
    const bridge = `${sysRoot}${rootBus}${rel}`
    let entries: string[] | undefined
    try {
      entries = await readdir(`${bridge}/pci_bus`)
    } catch {
      entries = undefined
    }
    if (entries !== undefined) {
      if (entries.length !== 1) throw new PciError(`expected exactly one PCI bus under ${bridge}/pci_bus, found ${entries.length}`, { bridge })
      bus = entries[0]!
      continue
    }
    let children: string[]
    try {
      children = await readdir(bridge)
    } catch {
      throw new PciError(`PCI bridge ${bridge} not found`, { bridge })
    }
    const buses = new Set<string>()
    for (const c of children) {
      if (!PCI_ADDR_NAME.test(c)) continue
      if (!(await stat(`${bridge}/${c}`).catch(() => undefined))?.isDirectory()) continue
      buses.add(c.slice(0, 7))
    }
    if (buses.size !== 1) throw new PciError(`cannot infer the bus behind ${bridge} (${buses.size} candidates)`, { bridge })
    bus = [...buses][0]!
  }
  return rel
}
