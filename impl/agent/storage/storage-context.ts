// What a storage handler gets from the agent: the platform seams (DM, node ops, mounter, device
// discovery), a logger and the container id — never module globals (style.md §7).
import type { Storage } from '../../gen/agent_pb.ts'
import type { DmBackend, NodeOps } from '../../dmverity/index.ts'
import type { Logger } from '../../types/logger.ts'

/** The fields of agent-protocol `Storage` this handler reads (a generated `Storage` fits). */
export type StorageLike = Pick<Storage, 'driver' | 'source' | 'fstype' | 'options' | 'mountPoint'>

/** An absolute point in time (ms, `clock.now()` scale) and the budget it was derived from, for messages. */
export interface Deadline {
  readonly at: number
  readonly budgetMs: number
}

export interface MountRequest {
  source: string
  target: string
  fstype: string
  /** MS_* flags. */
  flags: number
  /** fs-specific data string. */
  data: string
}

export interface Mounter {
  /** mount(2). A target already mounted with the same fstype is a silent no-op (§5). */
  mount(m: MountRequest): Promise<void>
  /** umount(2) of one target. */
  umount(target: string): Promise<void>
}

export interface DeviceResolver {
  /** Whole-disk node for a `blk` (PCI path) or `scsi` (`id:lun`) storage, e.g. `/dev/vdb` (§4.1). */
  resolveBaseDevice(storage: StorageLike, deadline: Deadline): Promise<string>
  /** Wait until the partition node exists (§4.4); rejects with PartitionWaitError at the deadline. */
  waitForPartition(path: string, deadline: Deadline): Promise<void>
}

export interface Clock {
  now(): number
  sleep(ms: number): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
}

export interface StorageContext {
  /** Container id; absent for sandbox-level storages (CreateSandbox). */
  cid?: string
  logger: Logger
  dm: DmBackend
  nodes: NodeOps
  mounter: Mounter
  devices: DeviceResolver
  /** devicemapper support built in (KATAREF_USE_DEVMAPPER, default on, §13). */
  devmapper: boolean
  clock?: Clock
  /** Base of per-container scratch dirs (default `/run/kata-containers`). */
  runDir?: string
  /** Uevent wait for the base device (agent.hotplug_timeout, default 3000 ms). */
  hotplugTimeoutMs?: number
  /** Partition node wait (default 1000 ms, §4.4). */
  partitionTimeoutMs?: number
  /** At most this many lowers set up at once (default: all, as upstream's join-all); 1 = one after another (bench). */
  layerConcurrency?: number
}

export const DEFAULT_RUN_DIR = '/run/kata-containers'
export const DEFAULT_HOTPLUG_TIMEOUT_MS = 3000
export const DEFAULT_PARTITION_TIMEOUT_MS = 1000

export function deadlineIn(clock: Clock, budgetMs: number): Deadline {
  return { at: clock.now() + budgetMs, budgetMs }
}

/** When a storage's base device must have appeared: now + agent.hotplug_timeout (default 3000 ms). */
export function hotplugDeadline(ctx: StorageContext): Deadline {
  return deadlineIn(ctx.clock ?? systemClock, ctx.hotplugTimeoutMs ?? DEFAULT_HOTPLUG_TIMEOUT_MS)
}

/** When a partition node must have appeared: now + the partition timeout (default 1000 ms, §4.4). */
export function partitionDeadline(ctx: StorageContext): Deadline {
  return deadlineIn(ctx.clock ?? systemClock, ctx.partitionTimeoutMs ?? DEFAULT_PARTITION_TIMEOUT_MS)
}

/** `KATAREF_USE_DEVMAPPER=0` (or no/false/off) switches devicemapper support off; default on. */
export function devmapperEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.KATAREF_USE_DEVMAPPER?.trim().toLowerCase()
  return !(v === '0' || v === 'no' || v === 'false' || v === 'off')
}
