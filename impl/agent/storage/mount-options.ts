// Storage options → mount(2) flags and data (Kata's parse_mount_options), X-kata.* dropped.
export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20, MANDLOCK: 0x40,
  DIRSYNC: 0x80, NOATIME: 0x400, NODIRATIME: 0x800, BIND: 0x1000, REC: 0x4000, SILENT: 0x8000,
  RELATIME: 0x200000, STRICTATIME: 0x1000000, LAZYTIME: 0x2000000,
} as const

const SET: Readonly<Record<string, number>> = {
  ro: MS.RDONLY, nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, sync: MS.SYNCHRONOUS, remount: MS.REMOUNT,
  mand: MS.MANDLOCK, dirsync: MS.DIRSYNC, noatime: MS.NOATIME, nodiratime: MS.NODIRATIME, bind: MS.BIND,
  rbind: MS.BIND | MS.REC, relatime: MS.RELATIME, strictatime: MS.STRICTATIME, lazytime: MS.LAZYTIME, silent: MS.SILENT,
}
const CLEAR: Readonly<Record<string, number>> = {
  rw: MS.RDONLY, suid: MS.NOSUID, dev: MS.NODEV, exec: MS.NOEXEC, async: MS.SYNCHRONOUS, nomand: MS.MANDLOCK,
  atime: MS.NOATIME, diratime: MS.NODIRATIME, norelatime: MS.RELATIME, nostrictatime: MS.STRICTATIME,
}

export function parseMountOptions(options: readonly string[]): { flags: number; data: string } {
  let flags = 0
  const data: string[] = []
  for (const o of options) {
    if (o.startsWith('X-kata.') || o === '' || o === 'defaults') continue
    if (o in SET) flags |= SET[o]!
    else if (o in CLEAR) flags &= ~CLEAR[o]!
    else data.push(o)
  }
  return { flags: flags >>> 0, data: data.join(',') }
}
