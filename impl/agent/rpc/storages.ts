// The storage part of CreateSandbox / CreateContainer / RemoveContainer / DestroySandbox
// (`add_storages` and `remove_container_resources`, spec agent-dmverity-erofs.md §3.1, §11).
// Only multi-layer EROFS groups are handled so far; any other storage is refused before anything is
// mounted (UNIMPLEMENTED), never silently ignored. Process handling lives elsewhere and calls
// `addContainerStorages` / `removeContainer` around its own work.
import { Code, KatarefError } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import {
  createGuestStorageEnv, isMultiLayerStorage, MultiLayerErofsState, parseFailpoints, withFailpoints,
  FAILPOINT_OPTION, MultiLayerErofsError, type MultiLayerStep, type StorageEnv, type StorageLike, type TeardownReport,
} from '../storage/index.ts'
import { formatErrorChain } from '../../dmverity/index.ts'

export class StorageRequestError extends KatarefError {}

/** Debug-only (with --failpoints): `X-kataref.layer-concurrency=N` sets up at most N lowers at once (bench/mount). */
export const LAYER_CONCURRENCY_OPTION = 'X-kataref.layer-concurrency='
/** Debug-only (with --failpoints): this request's blocking DM ioctls and mounts on libuv's threadpool (`on`, the default) or inline (`off`), for bench/mount. */
export const BLOCKING_THREADS_OPTION = 'X-kataref.blocking-threads=on'
export const INLINE_SYSCALLS_OPTION = 'X-kataref.blocking-threads=off'

function layerConcurrencyOption(storages: readonly StorageLike[]): number | undefined {
  for (const s of storages) {
    for (const o of s.options) {
      if (!o.startsWith(LAYER_CONCURRENCY_OPTION)) continue
      const n = Number(o.slice(LAYER_CONCURRENCY_OPTION.length))
      if (!Number.isInteger(n) || n < 1) throw new StorageRequestError(`invalid storage option ${o}: expected a positive integer`, Code.INVALID_ARGUMENT)
      return n
    }
  }
  return undefined
}

/**
 * A failed storage group as it crosses the RPC boundary: the wire carries only a message, so it is the
 * whole context chain (upstream's `a: b: c` rendering) plus which layer and step failed. The code is the
 * multi-layer error's (INVALID_ARGUMENT for bad options, DEADLINE_EXCEEDED for a missing partition, …).
 */
export class StorageGroupError extends KatarefError {
  constructor(readonly step: MultiLayerStep, readonly layerIndex: number | undefined, cause: MultiLayerErofsError) {
    super(`${formatErrorChain(cause)} [${layerIndex !== undefined ? `layer ${layerIndex}, ` : ''}step ${step}]`, cause.code, { ...cause.context }, { cause })
  }
}

export interface AgentStoragesOptions {
  /** Platform seams (default: the real guest env, nothing native loaded until first use). */
  env?: StorageEnv
  /** Honour `X-kataref.failpoint=` options (agent `--failpoints`; off by default). */
  failpoints?: boolean
  /** devicemapper support (default: KATAREF_USE_DEVMAPPER, on unless `0`). */
  devmapper?: boolean
  logger?: Logger
}

export class AgentStorages {
  readonly multiLayer: MultiLayerErofsState
  /** add_storages' mount lists: `container_mounts[cid]` (key `''`: sandbox-level). */
  readonly mounts = new Map<string, string[]>()
  private readonly env: StorageEnv
  private readonly failpoints: boolean
  private readonly log: Logger
  /** Any storage was ever handed to us (DestroySandbox has nothing to sweep otherwise). */
  private used = false
  private readonly realGuestEnv: boolean

  constructor(opts: AgentStoragesOptions = {}) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'storages' })
    this.realGuestEnv = opts.env === undefined
    this.env = opts.env ?? createGuestStorageEnv({ logger: this.log, ...(opts.devmapper !== undefined ? { devmapper: opts.devmapper } : {}) })
    this.failpoints = opts.failpoints ?? false
    this.multiLayer = new MultiLayerErofsState(this.env)
  }

  /**
   * Mount a request's storages for `cid` (undefined: sandbox-level). Returns the mount list
   * (§11: per group target, temp mount points, verity devices). Throws a KatarefError whose code is
   * the gRPC status (multi-layer errors carry `step` and `layerIndex` in their context).
   */
  async add(storages: readonly StorageLike[], cid?: string): Promise<string[]> {
    if (storages.length === 0) return []
    this.used = true
    const key = cid ?? ''
    if (cid !== undefined && this.mounts.has(key)) {
      throw new StorageRequestError(`container ${cid} already has storages`, Code.ALREADY_EXISTS, { cid })
    }
    const groupMountPoints = new Set(storages.filter(isMultiLayerStorage).map((s) => s.mountPoint))
    const other = storages.find((s) => !isMultiLayerStorage(s) && !groupMountPoints.has(s.mountPoint))
    if (other) {
      throw new StorageRequestError(`storage driver '${other.driver}' (${other.fstype} at ${other.mountPoint}) is not supported by this agent yet; only multi-layer EROFS`,
        Code.UNIMPLEMENTED, { driver: other.driver, mountPoint: other.mountPoint })
    }
    let env = this.env
    if (this.failpoints) {
      const fps = parseFailpoints(storages)
      if (fps.length) {
        this.log.warn({ cid, failpoints: fps }, 'failpoints armed for this request')
        env = withFailpoints(this.env, storages, fps)
      }
      const limit = layerConcurrencyOption(storages)
      if (limit !== undefined) env = { ...env, layerConcurrency: limit }
      // Debug-only A/B for bench/mount: the real guest seams with the blocking syscalls on the threadpool or inline.
      const onPool = storages.some((s) => s.options.includes(INLINE_SYSCALLS_OPTION)) ? false : storages.some((s) => s.options.includes(BLOCKING_THREADS_OPTION)) ? true : undefined
      if (this.realGuestEnv && onPool !== undefined) {
        const alt = createGuestStorageEnv({ logger: this.log, devmapper: this.env.devmapper, syscallsOnThreadpool: onPool })
        env = { ...env, dm: alt.dm, mounter: alt.mounter }
      }
    } else if (storages.some((s) => s.options.some((o) => o.startsWith(FAILPOINT_OPTION)))) {
      this.log.warn({ cid }, `${FAILPOINT_OPTION} ignored: agent not started with --failpoints`)
    }
    let result
    try {
      result = await this.multiLayer.addStorages(storages, cid, env)
    } catch (e) {
      if (e instanceof MultiLayerErofsError) throw new StorageGroupError(e.step, e.layerIndex, e)
      throw e
    }
    const list = result ? result.mounts : []
    this.mounts.set(key, [...(this.mounts.get(key) ?? []), ...list])
    return list
  }

  addContainerStorages(cid: string, storages: readonly StorageLike[]): Promise<string[]> {
    return this.add(storages, cid)
  }

  /** RemoveContainer: unmount its groups, destroy its verity devices last-first, forget it. Never throws. */
  async removeContainer(cid: string): Promise<TeardownReport> {
    const report = await this.multiLayer.removeContainer(cid)
    this.mounts.delete(cid)
    return report
  }

  /** DestroySandbox: everything left (containers, sandbox-level groups, stray kata-verity devices). */
  async destroy(): Promise<TeardownReport | undefined> {
    if (!this.used) return undefined
    const report = await this.multiLayer.destroySandbox()
    this.mounts.clear()
    return report
  }
}
