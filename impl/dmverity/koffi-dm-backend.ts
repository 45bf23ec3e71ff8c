// Real DmBackend: ioctl(2) on /dev/mapper/control through koffi (guest only; the host has no DM).
// Node opens fds with O_CLOEXEC itself. Cheap ioctls run synchronously on the calling thread; the
// requests in `pooled` go to the threadpool (blocking-pool.ts), errno included.
import { closeSync, openSync, constants } from 'node:fs'
import { DM_CONTROL_PATH, type DmBackend, type DmControl } from './dm-backend.ts'
import { inlineResult, loadLibc } from './libc.ts'
import type { BlockingPool } from './blocking-pool.ts'

export class KoffiDmBackend implements DmBackend {
  readonly kind = 'koffi'
  /**
   * `pool`: run each ioctl on a threadpool thread (upstream's spawn_blocking), so ioctls of
   * different layers overlap; without it, ioctls run synchronously on the calling thread.
   */
  constructor(
    private readonly controlPath = DM_CONTROL_PATH,
    private readonly pool?: BlockingPool,
    /** Which requests go to the pool (default all); the rest stay inline (a thread hop costs more than a cheap ioctl). */
    private readonly pooled?: ReadonlySet<number>,
  ) {}

  async openControl(): Promise<DmControl> {
    const libc = await loadLibc()
    const fd = openSync(this.controlPath, constants.O_RDONLY)
    let open = true
    return {
      ioctl: async (request, buf) => {
        if (!open) throw new Error(`${this.controlPath} is closed`)
        const pool = this.pooled && !this.pooled.has(request) ? undefined : this.pool
        const r = pool ? await pool.ioctl(fd, request, buf) : inlineResult(libc, libc.ioctl(fd, request, buf))
        return r.rc < 0 ? r.errno || 5 : 0
      },
      close: async () => {
        if (open) closeSync(fd)
        open = false
      },
    }
  }
}
