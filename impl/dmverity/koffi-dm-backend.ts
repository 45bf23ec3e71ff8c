// Real DmBackend: ioctl(2) on /dev/mapper/control through koffi (guest only; the host has no DM).
// Node opens fds with O_CLOEXEC itself. Calls are synchronous: DM ioctls used here return promptly (resume of a fresh verity device,
// deferred remove), and a synchronous call is the only way to read errno reliably from koffi.
import { closeSync, openSync, constants } from 'node:fs'
import { DM_CONTROL_PATH, type DmBackend, type DmControl } from './dm-backend.ts'
import { loadLibc } from './libc.ts'

export class KoffiDmBackend implements DmBackend {
  readonly kind = 'koffi'
  constructor(private readonly controlPath = DM_CONTROL_PATH) {}

  async openControl(): Promise<DmControl> {
    const libc = await loadLibc()
    const fd = openSync(this.controlPath, constants.O_RDONLY)
    let open = true
    return {
      ioctl: async (request, buf) => {
        if (!open) throw new Error(`${this.controlPath} is closed`)
        const rc = libc.ioctl(fd, request, buf)
        return rc < 0 ? libc.errno() || 5 : 0
      },
      close: async () => {
        if (open) closeSync(fd)
        open = false
      },
    }
  }
}
