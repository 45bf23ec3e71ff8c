// A minimal, deterministic newc (SVR4, "070701") cpio writer for initramfs archives:
// entries are written in the order given, with fixed inode numbers, uid/gid 0 and mtime 0.

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number }

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const S_IFCHR = 0o020000

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0')
}

function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4)
}

function header(ino: number, mode: number, nlink: number, size: number, name: string, rdev = { major: 0, minor: 0 }): Buffer {
  const nameBuf = Buffer.from(name + '\0', 'utf8')
  const fields = [
    '070701',
    hex8(ino),
    hex8(mode),
    hex8(0), // uid
    hex8(0), // gid
    hex8(nlink),
    hex8(0), // mtime
    hex8(size),
    hex8(0), // devmajor
    hex8(0), // devminor
    hex8(rdev.major),
    hex8(rdev.minor),
    hex8(nameBuf.length),
    hex8(0), // check
  ].join('')
  const head = Buffer.concat([Buffer.from(fields, 'ascii'), nameBuf])
  return Buffer.concat([head, pad4(head.length)])
}

/** Serialises entries into one newc archive (uncompressed) with its TRAILER!!! record. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = []
  let ino = 1
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '')
    if (name.length === 0) continue
    switch (e.kind) {
      case 'dir':
        parts.push(header(ino++, S_IFDIR | (e.mode ?? 0o755), 2, 0, name))
        break
      case 'file':
        parts.push(header(ino++, S_IFREG | (e.mode ?? 0o644), 1, e.data.length, name), e.data, pad4(e.data.length))
        break
      case 'symlink': {
        const data = Buffer.from(e.target, 'utf8')
        parts.push(header(ino++, S_IFLNK | 0o777, 1, data.length, name), data, pad4(data.length))
        break
      }
      case 'chardev':
        parts.push(header(ino++, S_IFCHR | (e.mode ?? 0o600), 1, 0, name, { major: e.major, minor: e.minor }))
        break
    }
  }
  parts.push(header(0, 0, 1, 0, 'TRAILER!!!'))
  return Buffer.concat(parts)
}

/** Adds the parent folders of every entry (once, parents first) so the kernel can unpack it. */
export function withParents(entries: readonly CpioEntry[]): CpioEntry[] {
  const seen = new Set<string>()
  const out: CpioEntry[] = []
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '')
    const segs = name.split('/')
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join('/')
      if (!seen.has(dir)) {
        seen.add(dir)
        out.push({ kind: 'dir', path: dir })
      }
    }
    if (e.kind === 'dir') {
      if (seen.has(name)) continue
      seen.add(name)
    }
    out.push(e)
  }
  return out
}
