// Runtime side of CopyFile (agent-process-cgroup-devices.md §4): building CopyFileRequests for a
// host file tree when there is no shared filesystem. Pure over stat results; readCopyTree() does
// the lstat/read walk. Field names follow protobuf-es for agent.proto CopyFileRequest
// (int64 → bigint, uint32/int32 → number).
//
// kataref sends: full st_mode incl. type bits (runtime-rs since d89290472f), regular files in
// 1 MiB chunks with offset = k * 1 MiB (runtime-go), directories and symlinks as one request each.
// Symlinks carry their lstat mode (0o120777; the agent ignores the permission bits) and the
// target as data with file_size 0.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { posix } from 'node:path'
import { InvalidInputError } from '../../types/errors.ts'

export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const COPY_FILE_CHUNK_SIZE = 1048576
/** dir_mode for implicitly created parents: S_IFDIR | 0o750 (only `& 0o777` matters to the agent). */
export const DEFAULT_COPY_DIR_MODE = S_IFDIR | 0o750
/** CopyFile is confined to this guest directory. */
export const KATA_GUEST_SHARE_DIR = '/run/kata-containers/shared/containers/'

export interface CopyFileRequest {
  path: string
  fileSize: bigint
  fileMode: number
  dirMode: number
  uid: number
  gid: number
  offset: bigint
  data: Uint8Array
}

export interface StatLike {
  /** Full st_mode (type + permission bits). */
  mode: number
  uid: number
  gid: number
}

/** One entry of a host file tree; which payload is used depends on `stat.mode & S_IFMT`. */
export interface CopyTreeNode {
  name: string
  stat: StatLike
  /** Regular file content. */
  data?: Uint8Array
  /** Symlink target. */
  linkTarget?: string
  /** Directory entries. */
  children?: CopyTreeNode[]
}

export type CopyFileKind = 'dir' | 'file' | 'symlink'

export function copyFileKind(mode: number, path = ''): CopyFileKind {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return 'dir'
    case S_IFREG:
      return 'file'
    case S_IFLNK:
      return 'symlink'
    default:
      throw new InvalidInputError('CopyFile source', `Unsupported file type ${(mode & S_IFMT).toString(8).padStart(6, '0')}${path ? ` at ${path}` : ''}`, { path, mode })
  }
}

/** Guest paths must lie strictly under the shared dir and must not contain `..`. */
export function checkGuestPath(path: string): void {
  if (!path.startsWith(KATA_GUEST_SHARE_DIR) || path.length === KATA_GUEST_SHARE_DIR.length) {
    throw new InvalidInputError('CopyFile path', `${path} is not under ${KATA_GUEST_SHARE_DIR}`, { path })
  }
  if (path.split('/').includes('..')) throw new InvalidInputError('CopyFile path', `${path} contains a '..' component`, { path })
}

/**
 * `<shared dir><cid>-<16 hex>-<basename of destination>`; `hex16` is injected (random in production).
 */
export function sharedFileGuestPath(containerId: string, destination: string, hex16: string): string {
  if (!/^[0-9a-f]{16}$/.test(hex16)) throw new InvalidInputError('hex16', `expected 16 lowercase hex characters, got ${JSON.stringify(hex16)}`)
  return `${KATA_GUEST_SHARE_DIR}${containerId}-${hex16}-${posix.basename(destination)}`
}

/** Requests for one entry: a regular file in 1 MiB chunks (one empty request for size 0), else one request. */
export function copyFileRequests(path: string, node: Omit<CopyTreeNode, 'name' | 'children'>, dirMode = DEFAULT_COPY_DIR_MODE): CopyFileRequest[] {
  checkGuestPath(path)
  const { mode, uid, gid } = node.stat
  const base = { path, fileMode: mode, dirMode, uid, gid }
  switch (copyFileKind(mode, path)) {
    case 'dir':
      return [{ ...base, fileSize: 0n, offset: 0n, data: new Uint8Array(0) }]
    case 'symlink': {
      if (node.linkTarget === undefined) throw new InvalidInputError('CopyFile source', `symlink ${path} has no target`, { path })
      return [{ ...base, fileSize: 0n, offset: 0n, data: new TextEncoder().encode(node.linkTarget) }]
    }
    case 'file': {
      const data = node.data ?? new Uint8Array(0)
      const fileSize = BigInt(data.length)
      if (data.length === 0) return [{ ...base, fileSize, offset: 0n, data }]
      const out: CopyFileRequest[] = []
      for (let off = 0; off < data.length; off += COPY_FILE_CHUNK_SIZE) {
        out.push({ ...base, fileSize, offset: BigInt(off), data: data.subarray(off, off + COPY_FILE_CHUNK_SIZE) })
      }
      return out
    }
  }
}

/**
 * Requests for a whole tree rooted at `guestPath`, breadth first: the root (dir_mode = default),
 * then each level; subdirectories get dir_mode = their own st_mode, files and symlinks the default.
 */
export function copyTreeRequests(guestPath: string, root: CopyTreeNode): CopyFileRequest[] {
  const out: CopyFileRequest[] = [...copyFileRequests(guestPath, root)]
  if (copyFileKind(root.stat.mode, guestPath) !== 'dir') return out
  let level: { path: string; node: CopyTreeNode }[] = [{ path: guestPath, node: root }]
  while (level.length > 0) {
    const next: typeof level = []
    for (const { path, node } of level) {
      for (const child of node.children ?? []) {
        if (child.name === '' || child.name === '.' || child.name === '..' || child.name.includes('/')) {
          throw new InvalidInputError('CopyFile source', `bad entry name ${JSON.stringify(child.name)} under ${path}`, { path })
        }
        const childPath = `${path}/${child.name}`
        const isDir = copyFileKind(child.stat.mode, childPath) === 'dir'
        out.push(...copyFileRequests(childPath, child, isDir ? child.stat.mode : DEFAULT_COPY_DIR_MODE))
        if (isDir) next.push({ path: childPath, node: child })
      }
    }
    level = next
  }
  return out
}

/** lstat walk of a host path into a CopyTreeNode (entries sorted by name). */
export function readCopyTree(hostPath: string): CopyTreeNode {
  const st = lstatSync(hostPath)
  const node: CopyTreeNode = { name: posix.basename(hostPath), stat: { mode: st.mode, uid: st.uid, gid: st.gid } }
  switch (copyFileKind(st.mode, hostPath)) {
    case 'file':
      node.data = readFileSync(hostPath)
      break
    case 'symlink':
      node.linkTarget = readlinkSync(hostPath)
      break
    case 'dir':
      node.children = readdirSync(hostPath).sort().map((n) => readCopyTree(posix.join(hostPath, n)))
      break
  }
  return node
}
