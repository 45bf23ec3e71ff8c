// Real Mounter for the guest: mount(2)/umount2(2) through koffi (no dependency on busybox applets,
// errno straight into the error chain). A target already mounted with the same fstype is a no-op (§5).
import { readFile } from 'node:fs/promises'
import { errnoName, loadLibc } from '../../dmverity/index.ts'
import { KatarefError, Code } from '../../types/errors.ts'
import type { Mounter, MountRequest } from './storage-context.ts'

export interface MountInfoEntry {
  mountPoint: string
  fstype: string
  source: string
}

/** Decode the `\040`-style escapes of /proc/self/mountinfo. */
function unescapeMountInfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** Parse /proc/self/mountinfo: `id parent maj:min root mountpoint opts [optional…] - fstype source superopts`. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const f = line.split(' ')
    const sep = f.indexOf('-', 6)
    if (sep < 0 || f.length < sep + 3) continue
    out.push({ mountPoint: unescapeMountInfo(f[4]!), fstype: f[sep + 1]!, source: unescapeMountInfo(f[sep + 2]!) })
  }
  return out
}

export class MountError extends KatarefError {}

export class LinuxMounter implements Mounter {
  constructor(private readonly mountInfoPath = '/proc/self/mountinfo') {}

  async isMounted(target: string, fstype?: string): Promise<boolean> {
    const entries = parseMountInfo(await readFile(this.mountInfoPath, 'utf8'))
    return entries.some((e) => e.mountPoint === target && (fstype === undefined || e.fstype === fstype))
  }

  async mount(m: MountRequest): Promise<void> {
    if (await this.isMounted(m.target, m.fstype)) return
    const libc = await loadLibc()
    if (libc.mount(m.source, m.target, m.fstype, m.flags, m.data === '' ? null : m.data) !== 0) {
      const errno = libc.errno()
      throw new MountError(`mount ${m.fstype} ${m.source} on ${m.target}: ${errnoName(errno)}`, Code.INTERNAL, { ...m, errno })
    }
  }

  async umount(target: string): Promise<void> {
    const libc = await loadLibc()
    if (libc.umount2(target, 0) !== 0) {
      const errno = libc.errno()
      throw new MountError(`umount ${target}: ${errnoName(errno)}`, Code.INTERNAL, { target, errno })
    }
  }
}
