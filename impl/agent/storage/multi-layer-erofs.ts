// Multi-layer EROFS group handler (`handle_multi_layer_erofs_group`, §3): classify the group, prepare
// the scratch dirs, mount the optional ext4 upper, mount every lower concurrently (dm-verity or direct),
// assemble the overlay rootfs. Any failure undoes every completed step in reverse — G1 (layer-level,
// in layer-mount.ts), G3 (failures after the concurrent section) and G4 (upper mount, lower entries).
import { join, posix } from 'node:path'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { formatErrorChain } from '../../dmverity/index.ts'
import { waitAndMountLayer, type LayerMountInfo } from './layer-mount.ts'
import { MultiLayerErofsError, type MultiLayerStep } from './multi-layer-errors.ts'
import {
  MOUNT_0, MOUNT_1, MULTI_LAYER_EROFS_DRIVER, classifyMultiLayerGroup, isGptPartitioned, isMultiLayerStorage,
  partitionNumber, partitionPath, validateCid, validateTarget, type MkdirDirective, type MultiLayerGroup,
} from './multi-layer-options.ts'
import { parseMountOptions } from './mount-options.ts'
import { Rollback } from './rollback.ts'
import {
  DEFAULT_RUN_DIR, hotplugDeadline, partitionDeadline, systemClock,
  type StorageContext, type StorageLike,
} from './storage-context.ts'

export const CONCURRENT_MOUNT_FAILED = 'failed to mount one or more EROFS layers concurrently'

/** What teardown needs to know about one mounted group. */
export interface MultiLayerErofsRecord {
  cid?: string
  target: string
  /** Unmount order: overlay target, `T/upper` (explicit upper only), `T/lower-0`, `T/lower-1`, … */
  mounts: string[]
  /** Verity node paths in layer-index order (destroyed in reverse). */
  verityDevices: string[]
  /** Directories this group created, in creation order (removed in reverse if empty). */
  createdDirs: string[]
  /**
   * Scratch trees removed recursively on teardown once the overlay is unmounted: the run-backed
   * upper's `upper` and `work` (overlayfs leaves `work/work` and the container's writes there, so an
   * rmdir-if-empty would keep the whole scratch dir). Empty with an explicit ext4 upper (its data is on
   * that device).
   */
  scratchTrees: string[]
}

export interface MultiLayerErofsResult {
  /** The overlay target. */
  mountPoint: string
  processedMountPoints: string[]
  /** [`T/upper` if explicit upper] + [`T/lower-0`, …]. */
  tempMountPoints: string[]
  /** Node paths of created verity devices, layer-index order. */
  verityDevices: string[]
  /** add_storages' contribution to the mount list (§11): target, temp mount points, verity devices. */
  mounts: string[]
  record: MultiLayerErofsRecord
}

function groupError(step: MultiLayerStep, message: string, cause: unknown, layerIndex?: number): MultiLayerErofsError {
  return new MultiLayerErofsError(message, step, layerIndex, {}, { cause })
}

/** Resolve a mkdir directive's template and check it stays under `base` (§3.5 steps 3 and 7). */
export function resolveMkdirPath(d: MkdirDirective, upper: string, lower0: string): string {
  const base = d.deferred ? lower0 : upper
  const raw = d.path.split(MOUNT_1).join(lower0).split(MOUNT_0).join(upper)
  const resolved = posix.normalize(raw)
  if (resolved !== base && !resolved.startsWith(base + '/')) {
    throw new MultiLayerErofsError(`X-kata.mkdir.path '${d.spec}' resolves to ${resolved}, outside ${base}`, 'mkdir-directive', undefined, { resolved, base }, { code: 3 })
  }
  return resolved
}

export async function handleMultiLayerErofsGroup(storages: readonly StorageLike[], ctx: StorageContext): Promise<MultiLayerErofsResult> {
  const group: MultiLayerGroup = classifyMultiLayerGroup(storages)
  const log: Logger = (ctx.logger ?? nullLogger).child({ handler: 'multi-layer-erofs', cid: ctx.cid, target: group.target })
  const clock = ctx.clock ?? systemClock
  const groupStarted = clock.now()
  const cidDir = ctx.cid ?? 'sandbox'
  validateCid(cidDir)
  validateTarget(group.target)
  const runDir = ctx.runDir ?? DEFAULT_RUN_DIR
  const T = join(runDir, cidDir, 'multi-layer')
  const upperDir = join(T, 'upper')
  const lowerDir = (i: number) => join(T, `lower-${i}`)

  const rollback = new Rollback()
  const createdDirs: string[] = []
  const mkdirAll = async (path: string) => {
    for (const d of await ctx.nodes.mkdirAll(path)) {
      createdDirs.push(d)
      rollback.push(`rmdir ${d}`, async () => { await ctx.nodes.rmdirIfEmpty(d) })
    }
  }
  const undoAll = async (e: unknown): Promise<never> => {
    const failures = await rollback.run(log, 'multi-layer erofs rollback')
    if (failures.length && e instanceof MultiLayerErofsError) e.context.rollbackErrors = failures
    throw e
  }

  const tempMountPoints: string[] = []
  const baseBySource = new Map<string, string>()
  let step: MultiLayerStep = 'prepare'
  try {
    // 1. scratch dirs
    await mkdirAll(join(runDir, cidDir))
    await mkdirAll(T)
    await mkdirAll(upperDir)
    // 2. explicit upper
    if (group.upper) {
      step = 'upper-mount'
      const up = group.upper
      let device = await ctx.devices.resolveBaseDevice(up, hotplugDeadline(ctx))
      const n = isGptPartitioned(up) ? partitionNumber(up) : undefined
      if (n !== undefined) {
        device = partitionPath(device, n)
        await ctx.devices.waitForPartition(device, partitionDeadline(ctx))
      }
      const { flags, data } = parseMountOptions(up.options)
      await ctx.mounter.mount({ source: device, target: upperDir, fstype: 'ext4', flags, data })
      rollback.push(`umount ${upperDir}`, () => ctx.mounter.umount(upperDir))
      tempMountPoints.push(upperDir)
    }
    // 3. immediate mkdir directives
    step = 'mkdir-directive'
    for (const d of group.mkdirs.filter((x) => !x.deferred)) await mkdirAll(resolveMkdirPath(d, upperDir, lowerDir(0)))
    // 4. pre-resolve GPT base devices, sequentially, one answer per source
    step = 'resolve'
    for (const l of group.lowers) {
      if (!isGptPartitioned(l.storage) || baseBySource.has(l.storage.source)) continue
      try {
        baseBySource.set(l.storage.source, await ctx.devices.resolveBaseDevice(l.storage, hotplugDeadline(ctx)))
      } catch (e) {
        throw new MultiLayerErofsError(`multi-layer erofs layer ${l.index} (${l.storage.driver} ${l.storage.source}): resolve failed`, 'resolve', l.index, {}, { cause: e })
      }
    }
    // 5. lower mount points
    step = 'prepare'
    for (const l of group.lowers) await mkdirAll(lowerDir(l.index))
  } catch (e) {
    return undoAll(e instanceof MultiLayerErofsError ? e : groupError(step, `multi-layer erofs ${step} failed`, e))
  }

  // 6. all lowers concurrently (at most ctx.layerConcurrency at a time); every task runs to completion (join-all)
  const mountStarted = clock.now()
  const settled = await allSettledLimited(group.lowers.map((l) => () =>
    waitAndMountLayer(ctx, l, lowerDir(l.index), isGptPartitioned(l.storage) ? baseBySource.get(l.storage.source) : undefined, log)), ctx.layerConcurrency)
  const layersMs = clock.now() - mountStarted
  const layers: LayerMountInfo[] = []
  const failed: { index: number; error: unknown }[] = []
  settled.forEach((r, i) => (r.status === 'fulfilled' ? layers.push(r.value) : failed.push({ index: i, error: r.reason })))
  // §12 order: all lower mounts are undone (descending) before any verity device (descending).
  for (const l of layers) if (l.undoVerity) rollback.push(l.undoVerity.label, l.undoVerity.run)
  for (const l of layers) rollback.push(l.undoMount.label, l.undoMount.run)
  if (failed.length) {
    const first = failed[0]!
    const cause = first.error
    const err = new MultiLayerErofsError(CONCURRENT_MOUNT_FAILED,
      cause instanceof MultiLayerErofsError ? cause.step : 'mount', first.index,
      { failedLayers: failed.map((f) => f.index), otherErrors: failed.slice(1).map((f) => formatErrorChain(f.error)) }, { cause })
    return undoAll(err)
  }
  const verityDevices = layers.filter((l) => l.verityDevice).map((l) => l.verityDevice!)
  for (const l of layers) tempMountPoints.push(l.mountPoint)

  try {
    // 7. deferred mkdir directives
    step = 'mkdir-directive'
    for (const d of group.mkdirs.filter((x) => x.deferred)) await mkdirAll(resolveMkdirPath(d, upperDir, lowerDir(0)))
    // 8. overlay upper/work
    step = 'overlay'
    await mkdirAll(join(upperDir, 'upper'))
    await mkdirAll(join(upperDir, 'work'))
    // 9. overlay at the target
    await mkdirAll(group.target)
    const data = `upperdir=${join(upperDir, 'upper')},lowerdir=${layers.map((l) => l.mountPoint).join(':')},workdir=${join(upperDir, 'work')}`
    await ctx.mounter.mount({ source: 'overlay', target: group.target, fstype: 'overlay', flags: 0, data })
  } catch (e) {
    return undoAll(e instanceof MultiLayerErofsError ? e : groupError(step, `multi-layer erofs ${step} at ${group.target} failed`, e))
  }

  const record: MultiLayerErofsRecord = {
    ...(ctx.cid !== undefined ? { cid: ctx.cid } : {}),
    target: group.target,
    mounts: [group.target, ...tempMountPoints],
    verityDevices,
    createdDirs,
    scratchTrees: group.upper ? [] : [join(upperDir, 'upper'), join(upperDir, 'work')],
  }
  log.info({ lowers: layers.length, verityDevices, layersMs, totalMs: clock.now() - groupStarted, layerConcurrency: ctx.layerConcurrency ?? 'all' }, 'multi-layer erofs rootfs mounted')
  return {
    mountPoint: group.target,
    processedMountPoints: group.processedMountPoints,
    tempMountPoints,
    verityDevices,
    mounts: [group.target, ...tempMountPoints, ...verityDevices],
    record,
  }
}

/** Promise.allSettled over task thunks, at most `limit` running at once (default: all at once). */
export async function allSettledLimited<T>(tasks: readonly (() => Promise<T>)[], limit = Infinity): Promise<PromiseSettledResult<T>[]> {
  if (!(limit < tasks.length)) return Promise.allSettled(tasks.map((t) => t()))
  const out: PromiseSettledResult<T>[] = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) {
      try {
        out[i] = { status: 'fulfilled', value: await tasks[i]!() }
      } catch (reason) {
        out[i] = { status: 'rejected', reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(limit)) }, worker))
  return out
}

/** The handler as the agent's StorageHandler table sees it (keyed by driver, style.md §7). */
export const multiLayerErofsHandler = {
  driverTypes: [MULTI_LAYER_EROFS_DRIVER] as readonly string[],
  /** Also true for any storage with `X-kata.multi-layer=true`, whatever its driver. */
  isMember: isMultiLayerStorage,
  handleGroup: handleMultiLayerErofsGroup,
} as const
