// Real DeviceResolver for a udev-less guest: finds the base block device of a `blk` (virtio PCI
// path) or `scsi` (`id:lun`) storage by polling sysfs until the deadline, and waits for partition
// nodes (devtmpfs creates them) with the §4.4 poll. Polling sysfs stands in for the upstream
// uevent wait: same answer (`/dev/<devname>` of the whole disk), no netlink socket needed.
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KatarefError, Code } from '../../types/errors.ts'
import { exists } from '../fs-util.ts'
import { waitForPath } from './partition-wait.ts'
import { systemClock, type Clock, type Deadline, type DeviceResolver, type StorageLike } from './storage-context.ts'

const POLL_MS = 50

export class DeviceResolveError extends KatarefError {}

/** Split a PCI device-tree path into root complex and slots: `02/01` → (00, [02, 01]); `20/00/02` → (20, [00, 02]). */
export function splitPciPath(source: string): { rootComplex: string; slots: string[] } {
  const parts = source.split('/')
  if (parts.length === 0 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new DeviceResolveError(`invalid PCI path '${source}'`, Code.INVALID_ARGUMENT, { source })
  }
  const norm = parts.map((p) => p.toLowerCase().padStart(2, '0'))
  if (norm.length > 1 && parseInt(norm[0]!, 16) >= 0x20) return { rootComplex: norm[0]!, slots: norm.slice(1) }
  return { rootComplex: '00', slots: norm }
}

async function list(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch {
    return []
  }
}

export class SysfsDeviceResolver implements DeviceResolver {
  constructor(private readonly sysRoot = '/sys', private readonly devRoot = '/dev', private readonly clock: Clock = systemClock) {}

  /** The PCI device's sysfs dir, following bridges' secondary buses; undefined while not there yet. */
  async pciDeviceDir(source: string): Promise<string | undefined> {
    const { rootComplex, slots } = splitPciPath(source)
    let dir = join(this.sysRoot, 'devices', `pci0000:${rootComplex}`)
    let bus = `0000:${rootComplex}`
    for (const [i, slot] of slots.entries()) {
      dir = join(dir, `${bus}:${slot}.0`)
      if (i === slots.length - 1) break
      const buses = await list(join(dir, 'pci_bus'))
      if (buses.length === 0) return undefined
      bus = buses[0]!
    }
    return (await exists(dir)) ? dir : undefined
  }

  private async findBlk(source: string): Promise<string | undefined> {
    const dir = await this.pciDeviceDir(source)
    if (!dir) return undefined
    for (const v of (await list(dir)).filter((e) => /^virtio\d+$/.test(e))) {
      const names = await list(join(dir, v, 'block'))
      if (names[0]) return names[0]
    }
    return undefined
  }

  private async findScsi(source: string): Promise<string | undefined> {
    const [id, lun] = source.split(':')
    for (const dev of await list(join(this.sysRoot, 'bus', 'scsi', 'devices'))) {
      if (new RegExp(`^\\d+:0:${id}:${lun}$`).test(dev)) {
        const names = await list(join(this.sysRoot, 'bus', 'scsi', 'devices', dev, 'block'))
        if (names[0]) return names[0]
      }
    }
    return undefined
  }

  private async rescanScsi(source: string): Promise<void> {
    const [id, lun] = source.split(':')
    for (const host of await list(join(this.sysRoot, 'class', 'scsi_host'))) {
      await writeFile(join(this.sysRoot, 'class', 'scsi_host', host, 'scan'), `0 ${id} ${lun}`).catch(() => undefined)
    }
  }

  async resolveBaseDevice(s: StorageLike, deadline: Deadline): Promise<string> {
    let find: () => Promise<string | undefined>
    if (s.driver === 'blk') {
      splitPciPath(s.source)
      find = () => this.findBlk(s.source)
    } else if (s.driver === 'scsi') {
      if (!/^\d+:\d+$/.test(s.source)) throw new DeviceResolveError(`invalid SCSI address '${s.source}'`, Code.INVALID_ARGUMENT, { source: s.source })
      await this.rescanScsi(s.source)
      find = () => this.findScsi(s.source)
    } else {
      throw new DeviceResolveError(`unsupported driver type '${s.driver}' for multi-layer erofs`, Code.INVALID_ARGUMENT, { driver: s.driver })
    }
    for (;;) {
      const name = await find()
      if (name) {
        const path = join(this.devRoot, name)
        if (await exists(path)) return path
      }
      if (this.clock.now() >= deadline.at) {
        throw new DeviceResolveError(`no block device for ${s.driver} ${s.source} within ${deadline.budgetMs} ms`, Code.DEADLINE_EXCEEDED, { source: s.source })
      }
      await this.clock.sleep(POLL_MS)
    }
  }

  waitForPartition(path: string, deadline: Deadline): Promise<void> {
    return waitForPath(exists, path, deadline, this.clock)
  }
}
