// Blocking syscalls (DM ioctls, mount(2), umount2(2)) on worker threads: kataref's analogue of
// upstream's `spawn_blocking` for the DM ioctls. koffi calls are synchronous and block the thread
// that makes them; on the agent's main thread that serialises the "concurrent" layer mounts. Each
// worker loads libc through koffi itself and reads errno right after its own synchronous call (errno
// is per thread), so the error chain keeps exact errnos.
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const koffi = require(workerData.koffi)
const lib = koffi.load('libc.so.6')
const ioctl = lib.func('int ioctl(int fd, unsigned long request, void *arg)')
const mount = lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)')
const umount2 = lib.func('int umount2(const char *target, int flags)')
parentPort.on('message', (m) => {
  try {
    let rc
    let buf
    if (m.op === 'ioctl') {
      buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength)
      rc = ioctl(m.fd, m.request, buf)
    } else if (m.op === 'mount') {
      rc = mount(m.source, m.target, m.fstype, m.flags, m.data)
    } else if (m.op === 'umount2') {
      rc = umount2(m.target, m.flags)
    } else {
      throw new Error('unknown op ' + m.op)
    }
    const errno = rc !== 0 ? koffi.errno() : 0
    parentPort.postMessage({ id: m.id, rc, errno, buf })
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) })
  }
})
`

interface Reply {
  id: number
  rc?: number
  errno?: number
  buf?: Uint8Array
  error?: string
}

export interface SyscallResult {
  rc: number
  errno: number
}

export class BlockingPool {
  private readonly workers: { w: Worker; busy: number }[] = []
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()
  private nextId = 1

  constructor(size = 4, koffiPath = createRequire(import.meta.url).resolve('koffi')) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { koffi: koffiPath } })
      const slot = { w, busy: 0 }
      w.on('message', (r: Reply) => {
        slot.busy--
        const p = this.pending.get(r.id)
        this.pending.delete(r.id)
        if (!p) return
        if (r.error !== undefined) p.reject(new Error(`blocking pool: ${r.error}`))
        else p.resolve(r)
      })
      w.on('error', (e) => {
        for (const [id, p] of this.pending) {
          this.pending.delete(id)
          p.reject(e)
        }
      })
      w.unref()
      this.workers.push(slot)
    }
  }

  private call(msg: Record<string, unknown>): Promise<Reply> {
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a))
    const id = this.nextId++
    slot.busy++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      slot.w.postMessage({ ...msg, id })
    })
  }

  /** ioctl(fd, request, buf) on a worker; `buf` is updated in place with what the kernel wrote. */
  async ioctl(fd: number, request: number, buf: Buffer): Promise<SyscallResult> {
    const r = await this.call({ op: 'ioctl', fd, request, buf })
    if (r.buf) Buffer.from(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength).copy(buf)
    return { rc: r.rc!, errno: r.errno! }
  }

  async mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<SyscallResult> {
    const r = await this.call({ op: 'mount', source, target, fstype, flags, data })
    return { rc: r.rc!, errno: r.errno! }
  }

  async umount2(target: string, flags: number): Promise<SyscallResult> {
    const r = await this.call({ op: 'umount2', target, flags })
    return { rc: r.rc!, errno: r.errno! }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate()))
  }
}

let shared: BlockingPool | undefined

/** Default pool size: upstream runs these ioctls with spawn_blocking, off the agent's main thread. */
export const DEFAULT_BLOCKING_THREADS = 4

/** Pool size from `KATAREF_BLOCKING_THREADS` (default 4; `0` = no pool, syscalls inline). */
export function blockingThreadsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.KATAREF_BLOCKING_THREADS
  if (raw === undefined || raw === '') return DEFAULT_BLOCKING_THREADS
  const n = Number(raw)
  return Number.isInteger(n) && n > 0 ? n : 0
}

/**
 * The process-wide pool, created on first use with `size` workers; undefined for size 0.
 * On by default: inline, koffi's synchronous ioctls serialise the "concurrent" layer set-up on the
 * agent's thread (bench/mount, idle machine: concurrent/sequential 0.83 inline vs 0.51 on workers).
 * Under heavy host load a worker round trip can cost more than it saves (measured then: inline
 * 425 ms vs 533 ms on workers); KATAREF_BLOCKING_THREADS=0 keeps everything inline.
 */
export function sharedBlockingPool(size = blockingThreadsFromEnv()): BlockingPool | undefined {
  if (size <= 0) return undefined
  shared ??= new BlockingPool(size)
  return shared
}
