// Command-level DM operations over one open control node (devicemapper-rs `DM` analogue):
// builds each dm_ioctl, masks flags per command, grows the buffer on DM_BUFFER_FULL,
// and turns a non-zero errno into a DmIoctlError.
import {
  DM_ALLOWED_FLAGS, DM_IOCTL_SIZE, DM_MIN_BUF_SIZE, DM_VERSION_SENT, DmCmd, DmFlag,
  decodeDmDev, decodeDmIoctlHeader, decodeNameList, decodeTargetSpecs, dmRequest, encodeDmIoctl, encodeTargetSpecs,
  type DmIoctlHeader, type DmNameListEntry, type DmTarget,
} from './dm-ioctl.ts'
import type { DmControl } from './dm-backend.ts'
import { maskFlags, wireEventNr, type DmOptions, dmOptionsDefault } from './dm-options.ts'
import { DmIoctlError, Errno } from './errors.ts'

export interface DmClientOptions {
  sleep?: (ms: number) => Promise<void>
  /** DM_DEV_REMOVE attempts while the kernel answers EBUSY (upstream: 5, 200 ms apart). */
  removeAttempts?: number
  removeRetryMs?: number
}

export interface DmDeviceStatus {
  dev: bigint
  major: number
  minor: number
  openCount: number
  flags: number
  targetCount: number
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const MAX_BUF = 16 * 1024 * 1024

export class DmClient {
  private readonly sleep: (ms: number) => Promise<void>
  private readonly removeAttempts: number
  private readonly removeRetryMs: number

  constructor(private readonly control: DmControl, opts: DmClientOptions = {}) {
    this.sleep = opts.sleep ?? defaultSleep
    this.removeAttempts = opts.removeAttempts ?? 5
    this.removeRetryMs = opts.removeRetryMs ?? 200
  }

  /** Send one command; returns the decoded header and the whole buffer. */
  async call(cmd: DmCmd, name: string, opts: DmOptions, payload?: Buffer, targetCount = 0): Promise<{ header: DmIoctlHeader; buf: Buffer }> {
    let size = DM_MIN_BUF_SIZE
    for (;;) {
      const buf = encodeDmIoctl({
        version: DM_VERSION_SENT,
        targetCount,
        openCount: 0,
        flags: maskFlags(DM_ALLOWED_FLAGS[cmd], opts),
        eventNr: wireEventNr(cmd, opts, false),
        dev: 0n,
        name,
        uuid: '',
      }, payload, size)
      const errno = await this.control.ioctl(dmRequest(cmd), buf)
      if (errno !== 0) throw new DmIoctlError(cmd, name, errno)
      const header = decodeDmIoctlHeader(buf)
      if ((header.flags & DmFlag.BUFFER_FULL) !== 0 && size < MAX_BUF) {
        size *= 2
        continue
      }
      return { header, buf }
    }
  }

  async version(): Promise<[number, number, number]> {
    const { header } = await this.call(DmCmd.VERSION, '', dmOptionsDefault())
    return [...header.version] as [number, number, number]
  }

  async deviceCreate(name: string, opts: DmOptions): Promise<DmDeviceStatus> {
    return statusOf((await this.call(DmCmd.DEV_CREATE, name, opts)).header)
  }

  async tableLoad(name: string, targets: readonly DmTarget[], opts: DmOptions): Promise<void> {
    await this.call(DmCmd.TABLE_LOAD, name, opts, encodeTargetSpecs(targets), targets.length)
  }

  /** DM_DEV_SUSPEND: without DM_SUSPEND_FLAG in `opts` this resumes (activates the loaded table). */
  async deviceSuspend(name: string, opts: DmOptions): Promise<DmDeviceStatus> {
    return statusOf((await this.call(DmCmd.DEV_SUSPEND, name, opts)).header)
  }

  async deviceStatus(name: string): Promise<DmDeviceStatus> {
    return statusOf((await this.call(DmCmd.DEV_STATUS, name, dmOptionsDefault())).header)
  }

  /** DM_DEV_REMOVE, retried while EBUSY (§9.7 "Library REMOVE retry"). */
  async deviceRemove(name: string, opts: DmOptions): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.call(DmCmd.DEV_REMOVE, name, opts)
        return
      } catch (e) {
        if (!(e instanceof DmIoctlError) || e.errno !== Errno.EBUSY || attempt >= this.removeAttempts) throw e
        await this.sleep(this.removeRetryMs)
      }
    }
  }

  /** DM_TABLE_STATUS: the live table (`table: true`, DM_STATUS_TABLE_FLAG) or the targets' status lines. */
  async tableStatus(name: string, opts: { table: boolean }): Promise<DmTarget[]> {
    const { header, buf } = await this.call(DmCmd.TABLE_STATUS, name, { flags: opts.table ? DmFlag.STATUS_TABLE : 0, udevFlags: 0 })
    return decodeTargetSpecs(buf, header.dataStart, header.targetCount, 'from-first').map(({ status: _s, ...t }) => t)
  }

  async listDevices(): Promise<DmNameListEntry[]> {
    const { header, buf } = await this.call(DmCmd.LIST_DEVICES, '', dmOptionsDefault())
    if (header.dataSize <= DM_IOCTL_SIZE) return []
    return decodeNameList(buf.subarray(0, header.dataSize), header.dataStart)
  }
}

function statusOf(h: DmIoctlHeader): DmDeviceStatus {
  const { major, minor } = decodeDmDev(h.dev)
  return { dev: h.dev, major, minor, openCount: h.openCount, flags: h.flags, targetCount: h.targetCount }
}
