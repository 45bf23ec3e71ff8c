// One lower layer (`wait_and_mount_layer`, §5): base device → partition → wait → verity → mount.
// G1 fixed: a layer that fails after creating its verity device (or mounting) undoes its own steps
// before reporting, so nothing of a failed layer is left behind.
import {
  createDmverityDevice, destroyPartitionDmverityDevice, DmVerityError, parseDmverityOptions, type VerityDevice,
} from '../../dmverity/index.ts'
import { KatarefError } from '../../types/errors.ts'
import type { Logger } from '../../types/logger.ts'
import { MultiLayerErofsError, type MultiLayerStep } from './multi-layer-errors.ts'
import { hasVerityMarker, isGptPartitioned, partitionNumber, partitionPath, type LowerLayer } from './multi-layer-options.ts'
import { MS } from './mount-options.ts'
import { Rollback, type UndoStep } from './rollback.ts'
import {
  hotplugDeadline, partitionDeadline, systemClock, type StorageContext,
} from './storage-context.ts'

export const DEVMAPPER_NOT_BUILT_IN = 'dm-verity support not compiled in: build with `--features devicemapper` to enable'

export interface LayerMountInfo {
  index: number
  mountPoint: string
  /** Node path of the verity device, when one was created. */
  verityDevice?: string
  /** How to undo this layer: the mount (first) and the verity device (second), kept apart so the
   *  group can undo all mounts before any verity device (§12 order). */
  undoMount: UndoStep
  undoVerity?: UndoStep
}

function layerError(layer: LowerLayer, step: MultiLayerStep, message: string, cause?: unknown): MultiLayerErofsError {
  return new MultiLayerErofsError(`multi-layer erofs layer ${layer.index} (${layer.storage.driver} ${layer.storage.source}): ${message}`,
    step, layer.index, { source: layer.storage.source }, cause === undefined ? {} : { cause })
}

/**
 * Mount one lower at `mountPoint`. `baseDevice` is the pre-resolved whole disk for GPT lowers
 * (§4.2); non-GPT lowers resolve their own inside this (concurrent) task.
 */
export async function waitAndMountLayer(ctx: StorageContext, layer: LowerLayer, mountPoint: string, baseDevice: string | undefined, log: Logger): Promise<LayerMountInfo> {
  const clock = ctx.clock ?? systemClock
  const s = layer.storage
  const undo = new Rollback()
  let step: MultiLayerStep = 'resolve'
  // Wall time per phase, logged with the layer (bench/mount's breakdown; diagnostics only).
  const t0 = performance.now()
  const ms: { waitMs?: number; verityMs?: number; mountMs?: number } = {}
  const since = (t: number) => Math.round((performance.now() - t) * 10) / 10
  try {
    const base = baseDevice ?? (await ctx.devices.resolveBaseDevice(s, hotplugDeadline(ctx)))
    const gpt = isGptPartitioned(s)
    const verity = hasVerityMarker(s)
    let device = base
    let verityDevice: VerityDevice | undefined
    step = 'gpt'
    if (!gpt) {
      if (verity) throw new KatarefError('dm-verity requires GPT-partitioned storage with partition number')
    } else {
      const n = partitionNumber(s)
      if (n === undefined) {
        const opt = s.options.find((o) => o.startsWith('X-kata.partition-number='))
        throw new KatarefError(`GPT-partitioned storage missing partition number: ${JSON.stringify(opt ?? null)}`)
      }
      device = partitionPath(base, n)
      step = 'partition-wait'
      await ctx.devices.waitForPartition(device, partitionDeadline(ctx))
      ms.waitMs = since(t0)
      if (verity) {
        step = 'verity-disabled'
        if (!ctx.devmapper) {
          throw new KatarefError('dm-verity was requested but devicemapper support is not built in (KATAREF_USE_DEVMAPPER=0)', undefined, {},
            { cause: new Error(DEVMAPPER_NOT_BUILT_IN) })
        }
        step = 'verity-parse'
        let info
        try {
          info = parseDmverityOptions(s.options)
        } catch (e) {
          throw new KatarefError('Failed to parse dm-verity options', undefined, {}, { cause: e })
        }
        step = 'create'
        const tv = performance.now()
        const dmCtx = { dm: ctx.dm, nodes: ctx.nodes, logger: log, sleep: clock.sleep }
        try {
          verityDevice = await createDmverityDevice(dmCtx, device, info)
        } catch (e) {
          if (e instanceof DmVerityError) step = e.step === 'remove' || e.step === 'unlink' ? 'create' : e.step
          throw e
        }
        const path = verityDevice.path
        undo.push(`destroy dm-verity device ${path}`, () => destroyPartitionDmverityDevice(dmCtx, path))
        device = path
        ms.verityMs = since(tv)
      }
    }
    step = 'mkdir'
    await ctx.nodes.mkdirAll(mountPoint)
    step = 'mount'
    const tm = performance.now()
    await ctx.mounter.mount({ source: device, target: mountPoint, fstype: 'erofs', flags: MS.RDONLY, data: 'ro' })
    ms.mountMs = since(tm)
    const steps = undo.take()
    const info: LayerMountInfo = {
      index: layer.index,
      mountPoint,
      undoMount: { label: `umount ${mountPoint}`, run: () => ctx.mounter.umount(mountPoint) },
    }
    if (verityDevice) {
      info.verityDevice = verityDevice.path
      info.undoVerity = steps[0]!
    }
    log.info({ layer: layer.index, device, mountPoint, ...ms, layerMs: since(t0) }, 'mounted EROFS layer')
    return info
  } catch (e) {
    const failures = await undo.run(log, `layer ${layer.index} rollback`)
    const err = layerError(layer, step, `${step} failed`, e)
    if (failures.length) err.context.rollbackErrors = failures
    throw err
  }
}
