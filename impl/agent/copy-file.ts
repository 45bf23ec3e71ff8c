// CopyFile (spec §4; upstream do_copy_file since 3dba12cd81): confined to the shared containers dir
// as if it were a chroot; full st_mode (type + permission bits, incl. setuid/setgid/sticky) honoured;
// chunked regular files go through a temp file renamed atomically into place; a symlink at the target
// is replaced, never followed. Requests that would leave the shared dir are rejected before anything
// is touched.
import { constants as fsc } from 'node:fs'
import { chmod, chown, lchown, lstat, mkdir, open, rename, rm, symlink, unlink } from 'node:fs/promises'
import { Code, KatarefError } from '../types/errors.ts'
import { KATA_RUN_DIR } from './config.ts'
import { errnoCode } from './fs-util.ts'
import { scopedJoin } from './safe-path/index.ts'

export const SHARED_CONTAINERS_DIR = `${KATA_RUN_DIR}/shared/containers`
export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000
export const S_IFREG = 0o100000

export class CopyFileError extends KatarefError {
  constructor(message: string, code: Code, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, context, options)
  }
}

export interface CopyFileRequestLike {
  path: string
  fileSize: bigint | number
  fileMode: number
  dirMode: number
  uid: number
  gid: number
  offset: bigint | number
  data: Uint8Array
}

export interface CopyFileTarget {
  /** Prefix the request's path must lie under (component-wise); the wire path. */
  prefix?: string
  /** Where that prefix lives on this machine (the same in a guest; a temp dir on a host). */
  dir?: string
}

export type CopyKind = 'directory' | 'symlink' | 'file'

/** Bit-test dispatch, directory first (S_IFSOCK and S_IFBLK therefore count as directories, as upstream). */
export function copyKind(fileMode: number): CopyKind {
  if ((fileMode & S_IFDIR) === S_IFDIR) return 'directory'
  if ((fileMode & S_IFLNK) === S_IFLNK) return 'symlink'
  return 'file'
}

/** Rust `set_extension("tmp")` on the file name: `f` → `f.tmp`, `a.tar.gz` → `a.tar.tmp`, `.bashrc` → `.bashrc.tmp`. */
export function tempName(name: string): string {
  const dot = name.lastIndexOf('.')
  const stem = dot > 0 ? name.slice(0, dot) : name
  return `${stem}.tmp`
}

/**
 * Splits `path` into the components below the prefix. Component-wise: `/x/containersX/f` is not under
 * `/x/containers`. `..` that would climb out of the prefix, and an empty remainder, are rejected.
 */
export function relativeToShared(path: string, prefix = SHARED_CONTAINERS_DIR): string[] {
  if (!path.startsWith('/')) throw new CopyFileError(`CopyFile: path ${JSON.stringify(path)} is not absolute`, Code.INVALID_ARGUMENT, { path })
  const pc = path.split('/').filter((c) => c !== '' && c !== '.')
  const rc = prefix.split('/').filter((c) => c !== '' && c !== '.')
  const under = pc.length >= rc.length && rc.every((c, i) => pc[i] === c)
  if (!under) throw new CopyFileError(`CopyFile: ${path} is not under ${prefix}/`, Code.PERMISSION_DENIED, { path, prefix })
  const stack: string[] = []
  for (const c of pc.slice(rc.length)) {
    if (c === '..') {
      if (stack.length === 0) throw new CopyFileError(`CopyFile: ${path} traverses outside the shared directory`, Code.PERMISSION_DENIED, { path })
      stack.pop()
    } else stack.push(c)
  }
  if (stack.length === 0) throw new CopyFileError(`CopyFile: ${path} names the shared directory itself`, Code.INVALID_ARGUMENT, { path })
  return stack
}

async function lstatOrNull(p: string) {
  try {
    return await lstat(p)
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return null
    throw e
  }
}

/**
 * Creates (mkdir semantics, umask applies) the parent components with `dirMode & 0o777`; existing
 * components keep their mode; symlinked components are followed only inside the root and must lead to
 * an existing directory. Returns the resolved parent directory.
 */
async function ensureParent(root: string, parts: string[], dirMode: number): Promise<string> {
  let cur = root
  let rel: string[] = []
  for (const c of parts) {
    rel.push(c)
    const p = `${cur}/${c}`
    const st = await lstatOrNull(p)
    if (st === null) {
      await mkdir(p, { mode: dirMode & 0o777 })
      cur = p
    } else if (st.isDirectory()) {
      cur = p
    } else if (st.isSymbolicLink()) {
      const resolved = await scopedJoin(root, rel.join('/'))
      const t = await lstatOrNull(resolved)
      if (!t || !t.isDirectory()) {
        throw new CopyFileError(`CopyFile: parent component ${rel.join('/')} is a symlink that does not lead to a directory inside the shared dir`, Code.FAILED_PRECONDITION, { component: rel.join('/') })
      }
      cur = resolved
      rel = resolved.slice(root.length + 1).split('/')
    } else {
      throw new CopyFileError(`CopyFile: parent component ${rel.join('/')} is not a directory`, Code.FAILED_PRECONDITION, { component: rel.join('/') })
    }
  }
  return cur
}

/** Serves one CopyFile request. */
export async function copyFile(req: CopyFileRequestLike, target: CopyFileTarget = {}): Promise<{ path: string; complete: boolean }> {
  const prefix = target.prefix ?? SHARED_CONTAINERS_DIR
  const parts = relativeToShared(req.path, prefix)
  const dir = target.dir ?? prefix
  await mkdir(dir, { recursive: true })
  const root = (await scopedJoin(dir, '')).replace(/\/$/, '') || '/'
  const name = parts[parts.length - 1]!
  const parent = await ensureParent(root, parts.slice(0, -1), req.dirMode)
  if (parts.length > 1) await chown(parent, req.uid, req.gid)
  const dest = `${parent}/${name}`
  const offset = Number(req.offset)
  const kind = copyKind(req.fileMode)

  if (kind === 'directory') {
    const st = await lstatOrNull(dest)
    if (st && !st.isDirectory()) {
      await unlink(dest).catch((e) => {
        if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'EISDIR') throw e
      })
    }
    if (!st || !st.isDirectory()) await mkdir(dest, { mode: req.fileMode & 0o777 })
    // chown before chmod: a chown may clear setuid/setgid, so the mode is forced last.
    await chown(dest, req.uid, req.gid)
    await chmod(dest, req.fileMode & 0o7777)
    return { path: dest, complete: true }
  }

  if (offset === 0) await rm(dest, { recursive: true, force: true }) // never follows a leaf symlink

  if (kind === 'symlink') {
    await symlink(Buffer.from(req.data), dest)
    await lchown(dest, req.uid, req.gid)
    return { path: dest, complete: true }
  }

  const tmp = `${parent}/${tempName(name)}`
  const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW | (offset === 0 ? fsc.O_TRUNC : 0)
  const fh = await open(tmp, flags, req.fileMode & 0o7777)
  try {
    if (req.data.length > 0) await fh.write(req.data, 0, req.data.length, offset)
    const size = (await fh.stat()).size
    if (size !== Number(req.fileSize)) return { path: dest, complete: false }
    await fh.chown(req.uid, req.gid)
    await fh.chmod(req.fileMode & 0o7777)
  } finally {
    await fh.close()
  }
  await rename(tmp, dest)
  return { path: dest, complete: true }
}
