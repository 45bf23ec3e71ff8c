// Real Mounter for the guest: mount(2)/umount2(2) through koffi (no dependency on busybox applets,
// errno straight into the error chain). A target already mounted with the same fstype is a no-op (§5).
import { readFile } from 'node:fs/promises'
import { errnoName, inlineResult, loadLibc, type BlockingPool, type SyscallResult } from '../../dmverity/index.ts'
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

/** mount(2) copies at most one page of data (including the NUL). */
export const MOUNT_DATA_MAX = 4095

/**
 * Overlay data longer than a page (many `T/lower-<i>`): rewrite upperdir/lowerdir/workdir relative to
 * their common parent, to be mounted from that directory. Undefined when no rewrite is needed or possible.
 */
export function shortenOverlayData(data: string): { cwd: string; data: string } | undefined {
  if (data.length <= MOUNT_DATA_MAX) return undefined
  const opts = data.split(',')
  const paths: string[] = []
  for (const o of opts) {
    const m = /^(upperdir|lowerdir|workdir)=(.*)$/.exec(o)
    if (m) paths.push(...m[2]!.split(':'))
  }
  if (paths.length === 0 || paths.some((p) => !p.startsWith('/'))) return undefined
  let common = paths[0]!.split('/').slice(0, -1)
  for (const p of paths) {
    const parts = p.split('/')
    let i = 0
    while (i < common.length && i < parts.length - 1 && common[i] === parts[i]) i++
    common = common.slice(0, i)
  }
  const cwd = common.join('/') || '/'
  const rel = (p: string) => p.slice(cwd === '/' ? 1 : cwd.length + 1)
  const out = opts.map((o) => {
    const m = /^(upperdir|lowerdir|workdir)=(.*)$/.exec(o)
    return m ? `${m[1]}=${m[2]!.split(':').map(rel).join(':')}` : o
  }).join(',')
  return out.length <= MOUNT_DATA_MAX ? { cwd, data: out } : undefined
}

export class LinuxMounter implements Mounter {
  /** `pool`: mount/umount on threadpool threads (never the overlay-with-chdir case, which must stay on this thread). */
  constructor(private readonly mountInfoPath = '/proc/self/mountinfo', private readonly pool?: BlockingPool) {}

  async isMounted(target: string, fstype?: string): Promise<boolean> {
    const entries = parseMountInfo(await readFile(this.mountInfoPath, 'utf8'))
    return entries.some((e) => e.mountPoint === target && (fstype === undefined || e.fstype === fstype))
  }

  async mount(m: MountRequest): Promise<void> {
    if (await this.isMounted(m.target, m.fstype)) return
    const libc = await loadLibc()
    const short = m.fstype === 'overlay' ? shortenOverlayData(m.data) : undefined
    const data = m.data === '' ? null : m.data
    let r: SyscallResult
    if (short) {
      // chdir + mount + chdir back run synchronously, so no other JS sees the changed cwd.
      const prev = process.cwd()
      process.chdir(short.cwd)
      try {
        r = inlineResult(libc, libc.mount(m.source, m.target, m.fstype, m.flags, short.data))
      } finally {
        process.chdir(prev)
      }
    } else {
      r = this.pool ? await this.pool.mount(m.source, m.target, m.fstype, m.flags, data) : inlineResult(libc, libc.mount(m.source, m.target, m.fstype, m.flags, data))
    }
    if (r.rc !== 0) {
      throw new MountError(`mount ${m.fstype} ${m.source} on ${m.target}: ${errnoName(r.errno)}`, Code.INTERNAL, { ...m, errno: r.errno })
    }
  }

  async umount(target: string): Promise<void> {
    const libc = await loadLibc()
    const r = this.pool ? await this.pool.umount2(target, 0) : inlineResult(libc, libc.umount2(target, 0))
    if (r.rc !== 0) throw new MountError(`umount ${target}: ${errnoName(r.errno)}`, Code.INTERNAL, { target, errno: r.errno })
  }
}
