// The agent's end of a virtio-serial port (/dev/vportNpM), found by its port name.
//
// Facts that shape this (measured in the guest, see spec README): net.Socket cannot wrap the fd,
// so reads go through fs (libuv threadpool); while no host is connected to the QEMU chardev a read
// returns 0 bytes at once. EOF therefore means "no host right now", never "channel gone": we end
// the current session, back off briefly and keep reading. Each time data arrives after an EOF a
// fresh Duplex session starts, so a host that reconnects gets a fresh ttrpc connection.
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises'
import { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Code, KatarefError } from '../../types/errors.ts'
import type { Logger } from '../../types/logger.ts'

const VIRTIO_PORTS_SYSFS = '/sys/class/virtio-ports'
const READ_CHUNK = 64 * 1024

export class PortNotFoundError extends KatarefError {
  constructor(name: string, seen: string[]) {
    super(`virtio-serial port ${JSON.stringify(name)} not found (ports seen: ${seen.join(', ') || 'none'})`, Code.NOT_FOUND, { name, seen })
  }
}

/** Resolve a port name to its device node, polling sysfs until `deadlineMs` (the driver may still be probing). */
export async function findVirtioPort(name: string, deadlineMs = 10_000, sysfs = VIRTIO_PORTS_SYSFS): Promise<string> {
  const until = Date.now() + deadlineMs
  for (;;) {
    const seen: string[] = []
    for (const port of await readdir(sysfs).catch(() => [] as string[])) {
      const portName = (await readFile(`${sysfs}/${port}/name`, 'utf8').catch(() => '')).trim()
      seen.push(portName ? `${port}=${portName}` : port)
      if (portName === name) return `/dev/${port}`
    }
    if (Date.now() >= until) throw new PortNotFoundError(name, seen)
    await sleep(100)
  }
}

export interface VirtioSerialOptions {
  logger: Logger
  /** Back-off after an EOF while no host is connected. */
  idleBackoffMs?: number
}

export class VirtioSerialChannel {
  private fh: FileHandle | undefined
  private session: Duplex | undefined
  private stopped = false
  private readonly backoffMs: number

  constructor(
    readonly devicePath: string,
    private readonly opts: VirtioSerialOptions,
  ) {
    this.backoffMs = opts.idleBackoffMs ?? 50
  }

  /** Read until stop(); hand every new host session to `onSession`. */
  async run(onSession: (session: Duplex) => void): Promise<void> {
    const fh = await open(this.devicePath, 'r+')
    this.fh = fh
    const buf = Buffer.allocUnsafe(READ_CHUNK)
    try {
      while (!this.stopped) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null)
        if (bytesRead === 0) {
          this.endSession()
          await sleep(this.backoffMs)
          continue
        }
        if (!this.session) {
          this.session = this.newSession(fh)
          this.opts.logger.info({ device: this.devicePath }, 'host connected')
          onSession(this.session)
        }
        this.session.push(Buffer.from(buf.subarray(0, bytesRead)))
      }
    } finally {
      this.endSession()
      await fh.close().catch(() => {})
    }
  }

  stop(): void {
    this.stopped = true
  }

  private endSession(): void {
    const s = this.session
    if (!s) return
    this.session = undefined
    this.opts.logger.info({ device: this.devicePath }, 'host disconnected')
    s.push(null)
    s.destroy()
  }

  private newSession(fh: FileHandle): Duplex {
    return new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        writeAll(fh, chunk).then(() => cb(), cb)
      },
    })
  }
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let off = 0
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, null)
    off += bytesWritten
  }
}
