// Blocking syscalls (DM ioctls, mount(2), umount2(2)) off the agent's thread: kataref's analogue of
// upstream's `spawn_blocking` for the DM ioctls. koffi calls are synchronous and block the thread that
// makes them; on the agent's thread that serialises the "concurrent" layer set-up. koffi's `.async`
// runs the call on a libuv threadpool thread and gives the callback that thread's errno (koffi ≥ 3.2),
// so error chains keep exact errnos. No V8 isolate per thread: the worker_threads pool this replaces
// cost the guest agent ~10 MiB RSS per worker (bench/mount: 88 MiB with 4 workers, 128 MiB with 8).
//
// Pool size = libuv's UV_THREADPOOL_SIZE (default 4), read once when the pool first starts, so it is
// set in the agent's environment (the guest launcher sets 8: every layer of an 8-layer group can be
// inside a DM_DEV_CREATE at once). The pool is shared with node's own fs work.
import { InvalidInputError } from '../types/errors.ts'
import { loadLibc, type SyscallResult } from './libc.ts'

export type { SyscallResult }

export class BlockingPool {
  /** ioctl(fd, request, buf) on a threadpool thread; the kernel writes into `buf` in place. */
  async ioctl(fd: number, request: number, buf: Buffer): Promise<SyscallResult> {
    return (await loadLibc()).async.ioctl(fd, request, buf)
  }

  async mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<SyscallResult> {
    return (await loadLibc()).async.mount(source, target, fstype, flags, data)
  }

  async umount2(target: string, flags: number): Promise<SyscallResult> {
    return (await loadLibc()).async.umount2(target, flags)
  }
}

let shared: BlockingPool | undefined

export const BLOCKING_SYSCALLS_ENV = 'KATAREF_BLOCKING_SYSCALLS'

/**
 * Whether blocking syscalls go to the threadpool: `KATAREF_BLOCKING_SYSCALLS=inline` keeps them on the
 * calling thread (the A/B baseline), `threadpool` or unset uses the pool; anything else is an error.
 */
export function blockingSyscallsOnThreadpool(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[BLOCKING_SYSCALLS_ENV]
  if (raw === undefined || raw === '' || raw === 'threadpool') return true
  if (raw === 'inline') return false
  throw new InvalidInputError(BLOCKING_SYSCALLS_ENV, `${JSON.stringify(raw)}; expected "threadpool" (default) or "inline"`)
}

/** The process-wide pool, or undefined when syscalls stay inline. */
export function sharedBlockingPool(onThreadpool = blockingSyscallsOnThreadpool()): BlockingPool | undefined {
  if (!onThreadpool) return undefined
  shared ??= new BlockingPool()
  return shared
}
