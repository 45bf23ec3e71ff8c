// Kubernetes emptyDir handling, runtime side (agent-process-cgroup-devices.md §5): classify the
// OCI mount source, type it (runtime-go SetEphemeralStorageType, with `disable_guest_empty_dir`
// and `emptydir_mode`), and build the Storage sent to the agent plus the rewritten OCI mount.
// Hugepage emptyDirs are always recreated in the guest (e191c5b716), whatever the mode.
import { posix } from 'node:path'
import { InvalidInputError } from '../../types/errors.ts'
import type { StorageEntry } from '../resource/rootfs/storage.ts'

export const K8S_EMPTY_DIR = 'kubernetes.io~empty-dir'
export const EPHEMERAL_GUEST_DIR = '/run/kata-containers/sandbox/ephemeral'
export const SHARED_CONTAINERS_GUEST_DIR = '/run/kata-containers/shared/containers'

export interface OciMount {
  destination: string
  source: string
  type: string
  options: string[]
}

/** agent.proto Storage with protobuf-es field names (one definition for the runtime). */
export type Storage = StorageEntry

/**
 * runtime-rs `is_empty_dir`: component based (`//`, `/./`, trailing `/` collapse); the parent's
 * name must be `kubernetes.io~empty-dir` and the parent must itself have a parent (Rust
 * `Path::parent`, which is `Some("")` for a relative single component).
 */
export function isEmptyDir(path: string): boolean {
  const parts = path.split('/').filter((c) => c !== '' && c !== '.')
  return parts.length >= 2 && parts[parts.length - 2] === K8S_EMPTY_DIR
}

/** runtime-go `isEmptyDir`: raw split on `/`, second-to-last piece. */
export function isEmptyDirGo(path: string): boolean {
  const pieces = path.split('/')
  return pieces.length >= 2 && pieces[pieces.length - 2] === K8S_EMPTY_DIR
}

export interface ProcMountEntry {
  device: string
  mountPoint: string
  fsType: string
  options: string[]
}

/** /proc/mounts text (octal escapes such as `\040` decoded). */
export function parseProcMounts(text: string): ProcMountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  const out: ProcMountEntry[] = []
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 4) continue
    out.push({ device: unescape(f[0]!), mountPoint: unescape(f[1]!), fsType: f[2]!, options: f[3]!.split(',') })
  }
  return out
}

export type EmptyDirMedium = 'memory' | 'hugepages' | 'disk'

/**
 * Medium from the mount entry whose mount point equals `source` exactly (the last such entry,
 * i.e. the top of an over-mount stack): tmpfs → memory, hugetlbfs → hugepages, else disk.
 * `requireBindForTmpfs` is the runtime-rs extra condition (OCI mount type must be `bind`).
 */
export function emptyDirMedium(source: string, mounts: readonly ProcMountEntry[], opts: { ociType?: string; requireBindForTmpfs?: boolean } = {}): EmptyDirMedium {
  const entry = mounts.filter((m) => m.mountPoint === source).at(-1)
  if (entry?.fsType === 'tmpfs' && (!opts.requireBindForTmpfs || opts.ociType === 'bind')) return 'memory'
  if (entry?.fsType === 'hugetlbfs') return 'hugepages'
  return 'disk'
}

export interface EmptyDirPolicy {
  /** `[runtime] disable_guest_empty_dir` (default true). */
  disableGuestEmptyDir: boolean
  /** `[runtime] emptydir_mode`: shared-fs | block-encrypted | block-plain. */
  emptydirMode: string
}

/** SetEphemeralStorageType: the OCI mount type after classification (unchanged when not retyped). */
export function emptyDirMountType(mount: OciMount, medium: EmptyDirMedium | undefined, policy: EmptyDirPolicy): string {
  if (!isEmptyDirGo(mount.source) || medium === undefined) return mount.type
  if (medium === 'memory') return 'ephemeral'
  if (medium === 'hugepages') return 'local'
  if (!policy.disableGuestEmptyDir && policy.emptydirMode === 'shared-fs') return 'local'
  return mount.type
}

const UNIT: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** `2M` / `1G` / `2MB` / `1GB` / `2048k` → bytes; undefined when unparsable. */
export function parsePageSize(s: string): number | undefined {
  const m = /^(\d+)\s*([kKmMgGtT]?)i?[bB]?$/.exec(s.trim())
  if (!m) return undefined
  return Number(m[1]) * UNIT[m[2]!.toUpperCase()]!
}

export interface HugepageLimit {
  /** OCI `pageSize`, e.g. `2MB`, `1GB`. */
  pageSize: string
  limit: number | bigint
}

export interface EmptyDirContext extends EmptyDirPolicy {
  sandboxId: string
  medium: EmptyDirMedium
  /** gid of the host emptyDir directory (fsgid option when non-zero). */
  hostGid: number
  /** Options of the host hugetlbfs mount (for `pagesize=`). */
  hostMountOptions?: readonly string[]
  /** OCI `linux.resources.hugepageLimits`. */
  hugepageLimits?: readonly HugepageLimit[]
}

export type EmptyDirVolumeKind =
  /** tmpfs emptyDir → guest tmpfs. */
  | 'ephemeral'
  /** hugetlbfs emptyDir → guest hugetlbfs. */
  | 'hugepages'
  /** disk emptyDir created guest-local (disable_guest_empty_dir = false, shared-fs). */
  | 'local'
  /** disk emptyDir kept as a bind volume shared from the host (default; kubelet sees usage). */
  | 'shared-bind'
  /** disk emptyDir in a block mode (disk.img inside the emptyDir; handled by the block volume). */
  | 'block'

export interface EmptyDirVolume {
  kind: EmptyDirVolumeKind
  /** The OCI mount as sent to the agent. */
  mount: OciMount
  /** Storage for CreateContainer (none for shared-bind / block). */
  storage?: Storage
}

function fsgid(gid: number): string[] {
  return gid !== 0 ? [`fsgid=${gid}`] : []
}

/**
 * Classifies one emptyDir OCI mount and builds what is sent to the agent (runtime-go
 * createContainer). Returns undefined for mounts that are not emptyDirs.
 */
export function emptyDirVolume(mount: OciMount, ctx: EmptyDirContext): EmptyDirVolume | undefined {
  if (!isEmptyDirGo(mount.source)) return undefined
  const type = emptyDirMountType(mount, ctx.medium, ctx)
  const base = posix.basename(mount.source)
  if (type === 'ephemeral') {
    const mountPoint = `${EPHEMERAL_GUEST_DIR}/${base}`
    return {
      kind: 'ephemeral',
      mount: { ...mount, source: mountPoint, type: 'bind' },
      storage: { driver: 'ephemeral', driverOptions: [], source: 'tmpfs', fstype: 'tmpfs', options: fsgid(ctx.hostGid), mountPoint },
    }
  }
  if (type === 'local' && ctx.medium === 'hugepages') {
    const opt = (ctx.hostMountOptions ?? []).find((o) => o.startsWith('pagesize='))
    if (opt === undefined) throw new InvalidInputError('hugepage emptyDir', `No pagesize option found for ${mount.source}`, { source: mount.source })
    const pageSize = parsePageSize(opt.slice('pagesize='.length))
    if (pageSize === undefined) throw new InvalidInputError('hugepage emptyDir', `unparsable ${opt} for ${mount.source}`, { source: mount.source })
    // No matching hugepageLimits entry leaves size 0 (mirrors runtime-go, which only assigns on a match).
    const limit = (ctx.hugepageLimits ?? []).find((l) => parsePageSize(l.pageSize) === pageSize)?.limit ?? 0
    const mountPoint = `${EPHEMERAL_GUEST_DIR}/${base}`
    return {
      kind: 'hugepages',
      mount: { ...mount, source: mountPoint, type: 'bind' },
      storage: { driver: 'ephemeral', driverOptions: [], source: 'nodev', fstype: 'hugetlbfs', options: [`pagesize=${pageSize},size=${limit}`], mountPoint },
    }
  }
  if (type === 'local') {
    const mountPoint = `${SHARED_CONTAINERS_GUEST_DIR}/${ctx.sandboxId}/rootfs/local/${base}`
    return {
      kind: 'local',
      mount: { ...mount, source: mountPoint, type: 'local' },
      storage: { driver: 'local', driverOptions: [], source: 'local', fstype: 'local', options: ['mode=0777', ...fsgid(ctx.hostGid)], mountPoint },
    }
  }
  const blockMode = ctx.emptydirMode === 'block-encrypted' || ctx.emptydirMode === 'block-plain'
  return { kind: blockMode ? 'block' : 'shared-bind', mount: { ...mount } }
}
