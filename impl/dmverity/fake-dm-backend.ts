// FakeDmBackend: a small simulated DM core behind the byte-level DmBackend seam.
// It decodes every dm_ioctl with the real codec, keeps a device table (create → load → resume →
// remove, deferred remove while open), records each call, and can be told to fail any command.
import {
  DM_IOCTL_SIZE, DM_CMD_NAMES, DmCmd, DmFlag, decodeDmIoctlHeader, decodeTargetSpecs, encodeDmDev,
  encodeNameList, encodeTargetSpecs, DmIoctlOffset, type DmIoctlHeader, type DmTarget,
} from './dm-ioctl.ts'
import type { DmBackend, DmControl } from './dm-backend.ts'
import { Errno } from './errors.ts'

export interface FakeDmCall {
  cmd: DmCmd
  cmdName: string
  request: number
  name: string
  flags: number
  eventNr: number
  header: DmIoctlHeader
  /** Copy of the 312 header bytes as sent. */
  raw: Buffer
  targets: DmTarget[]
  /** 0 on success. */
  errno: number
}

export interface FakeDmDevice {
  name: string
  minor: number
  readOnly: boolean
  inactive?: DmTarget[]
  live?: DmTarget[]
  suspended: boolean
  openCount: number
  deferredRemove: boolean
}

export interface FakeDmFailure {
  cmd: DmCmd
  /** Only names matching this (exact or RegExp) fail; all names when absent. */
  name?: string | RegExp
  errno?: number
  /** How many matching calls fail (default: every one). */
  times?: number
}

export const FAKE_DM_MAJOR = 253

export class FakeDmBackend implements DmBackend {
  readonly kind = 'fake'
  readonly calls: FakeDmCall[] = []
  readonly devices = new Map<string, FakeDmDevice>()
  private failures: (FakeDmFailure & { left: number })[] = []
  private nextMinor = 0
  openErrno = 0
  opens = 0
  closes = 0

  /** Fail matching ioctls with `errno` (default EIO). */
  failOn(f: FakeDmFailure): this {
    this.failures.push({ ...f, left: f.times ?? Number.POSITIVE_INFINITY })
    return this
  }

  clearFailures(): void {
    this.failures = []
    this.openErrno = 0
  }

  /** Simulate a holder (e.g. a mount) opening / closing the device. */
  openDevice(name: string): void {
    const d = this.devices.get(name)
    if (d) d.openCount++
  }

  closeDevice(name: string): void {
    const d = this.devices.get(name)
    if (!d) return
    d.openCount = Math.max(0, d.openCount - 1)
    if (d.openCount === 0 && d.deferredRemove) this.devices.delete(name)
  }

  /** Device name whose (major, minor) matches, for fakes that map a node back to DM. */
  nameOf(major: number, minor: number): string | undefined {
    if (major !== FAKE_DM_MAJOR) return undefined
    for (const d of this.devices.values()) if (d.minor === minor) return d.name
    return undefined
  }

  callSummary(): string[] {
    return this.calls.map((c) => `${c.cmdName}(${c.name}${c.flags ? `, 0x${c.flags.toString(16)}` : ''})${c.errno ? ` → ${c.errno}` : ''}`)
  }

  async openControl(): Promise<DmControl> {
    if (this.openErrno) {
      const e = Object.assign(new Error(`open /dev/mapper/control: errno ${this.openErrno}`), { errno: -this.openErrno, code: 'ENOENT' })
      throw e
    }
    this.opens++
    let closed = false
    return {
      ioctl: async (request, buf) => {
        if (closed) return Errno.EBADF
        return this.ioctl(request, buf)
      },
      close: async () => {
        if (!closed) this.closes++
        closed = true
      },
    }
  }

  private ioctl(request: number, buf: Buffer): number {
    if (request >>> 8 !== 0xc138fd) return Errno.ENOTTY
    const cmd = (request & 0xff) as DmCmd
    const header = decodeDmIoctlHeader(buf)
    const targets = cmd === DmCmd.TABLE_LOAD ? decodeTargetSpecs(buf, header.dataStart, header.targetCount, 'relative').map(({ status: _s, ...t }) => t) : []
    const call: FakeDmCall = {
      cmd, cmdName: DM_CMD_NAMES[cmd] ?? `cmd${cmd}`, request, name: header.name, flags: header.flags, eventNr: header.eventNr,
      header, raw: Buffer.from(buf.subarray(0, DM_IOCTL_SIZE)), targets, errno: 0,
    }
    this.calls.push(call)
    const injected = this.failures.find((f) => f.left > 0 && f.cmd === cmd && matches(f.name, header.name))
    if (injected) {
      injected.left--
      call.errno = injected.errno ?? Errno.EIO
      return call.errno
    }
    call.errno = this.execute(cmd, header, targets, buf)
    return call.errno
  }

  private execute(cmd: DmCmd, h: DmIoctlHeader, targets: DmTarget[], buf: Buffer): number {
    if (h.version[0] !== 4) return Errno.EINVAL
    const dev = this.devices.get(h.name)
    const out = (d: FakeDmDevice) => {
      buf.writeBigUInt64LE(encodeDmDev(FAKE_DM_MAJOR, d.minor), DmIoctlOffset.dev)
      buf.writeInt32LE(d.openCount, DmIoctlOffset.openCount)
      buf.writeUInt32LE((d.live?.length ?? 0) >>> 0, DmIoctlOffset.targetCount)
      let flags = h.flags | DmFlag.EXISTS
      if (d.live) flags |= DmFlag.ACTIVE_PRESENT
      if (d.inactive) flags |= DmFlag.INACTIVE_PRESENT
      if (d.suspended) flags |= DmFlag.SUSPEND
      buf.writeUInt32LE(flags >>> 0, DmIoctlOffset.flags)
    }
    switch (cmd) {
      case DmCmd.VERSION:
        buf.writeUInt32LE(4, 0); buf.writeUInt32LE(48, 4); buf.writeUInt32LE(0, 8)
        return 0
      case DmCmd.DEV_CREATE: {
        if (!h.name) return Errno.EINVAL
        if (dev) return Errno.EBUSY
        const d: FakeDmDevice = { name: h.name, minor: this.nextMinor++, readOnly: (h.flags & DmFlag.READONLY) !== 0, suspended: true, openCount: 0, deferredRemove: false }
        this.devices.set(h.name, d)
        out(d)
        return 0
      }
      case DmCmd.TABLE_LOAD:
        if (!dev) return Errno.ENXIO
        if (targets.length === 0) return Errno.EINVAL
        dev.inactive = targets
        out(dev)
        return 0
      case DmCmd.DEV_SUSPEND:
        if (!dev) return Errno.ENXIO
        if ((h.flags & DmFlag.SUSPEND) !== 0) {
          dev.suspended = true
        } else {
          if (dev.inactive) { dev.live = dev.inactive; delete dev.inactive }
          if (!dev.live) return Errno.EINVAL
          dev.suspended = false
        }
        out(dev)
        return 0
      case DmCmd.DEV_STATUS:
        if (!dev) return Errno.ENXIO
        out(dev)
        return 0
      case DmCmd.DEV_REMOVE:
        if (!dev) return Errno.ENXIO
        if (dev.openCount > 0) {
          if ((h.flags & DmFlag.DEFERRED_REMOVE) === 0) return Errno.EBUSY
          dev.deferredRemove = true
          return 0
        }
        this.devices.delete(h.name)
        return 0
      case DmCmd.TABLE_STATUS: {
        if (!dev) return Errno.ENXIO
        out(dev)
        const table = encodeTargetSpecs(dev.live ?? []).subarray()
        // Output `next` is measured from the first spec; rewrite relative offsets accordingly.
        let pos = 0
        for (let i = 0; i < (dev.live?.length ?? 0); i++) {
          const rel = table.readUInt32LE(pos + 20)
          table.writeUInt32LE(pos + rel, pos + 20)
          pos += rel
        }
        if (DM_IOCTL_SIZE + table.length > h.dataSize) return bufferFull(buf, h)
        table.copy(buf, DM_IOCTL_SIZE)
        buf.writeUInt32LE(DM_IOCTL_SIZE + table.length, DmIoctlOffset.dataSize)
        return 0
      }
      case DmCmd.LIST_DEVICES: {
        const list = encodeNameList([...this.devices.values()].map((d) => ({ name: d.name, dev: encodeDmDev(FAKE_DM_MAJOR, d.minor) })))
        if (DM_IOCTL_SIZE + list.length > h.dataSize) return bufferFull(buf, h)
        list.copy(buf, DM_IOCTL_SIZE)
        buf.writeUInt32LE(DM_IOCTL_SIZE + list.length, DmIoctlOffset.dataSize)
        return 0
      }
      default:
        return Errno.ENOTTY
    }
  }
}

function bufferFull(buf: Buffer, h: DmIoctlHeader): number {
  buf.writeUInt32LE((h.flags | DmFlag.BUFFER_FULL) >>> 0, DmIoctlOffset.flags)
  return 0
}

function matches(want: string | RegExp | undefined, name: string): boolean {
  if (want === undefined) return true
  return typeof want === 'string' ? want === name : want.test(name)
}
