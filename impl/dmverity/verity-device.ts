// Create and destroy dm-verity devices (kata-types dmverity.rs analogue, §9.7–§10).
// kataref differences from upstream, each tested by name:
//   G2 — a failure after DM_DEV_CREATE removes the half-made device (and its node) before returning;
//   G7 — the node is always made with mknod from DM_DEV_STATUS, never waited for from udev;
//   G9 — hashoffset not a multiple of hashsize is rejected (validateVerityTableInput).
import type { Logger } from '../types/logger.ts'
import { nullLogger } from '../types/logger.ts'
import { DM_CONTROL_PATH, type DmBackend, type DmControl } from './dm-backend.ts'
import { DmClient } from './dm-client.ts'
import { dmOptionsDeferredRemoveNoUdev, dmOptionsNoUdev, dmOptionsReadOnlyNoUdev } from './dm-options.ts'
import { buildDmverityDeviceName, DM_MAPPER_DIR, mapperPath, nameFromMapperPath, validateDmName } from './device-name.ts'
import { DmVerityError, NodeOpError, errnoOf, errorChain, formatErrorChain, type VerityStep } from './errors.ts'
import type { NodeOps } from './node-ops.ts'
import type { DmVerityInfo } from './verity-options.ts'
import { validateVerityTableInput, verityTarget } from './verity-table.ts'

export interface DmVerityContext {
  dm: DmBackend
  nodes: NodeOps
  logger?: Logger
  sleep?: (ms: number) => Promise<void>
}

export interface VerityDevice {
  name: string
  /** `/dev/mapper/<name>` */
  path: string
  major: number
  minor: number
}

/** Mode of the block node made under /dev/mapper (§9.8). */
export const VERITY_NODE_MODE = 0o600

async function openControl(ctx: DmVerityContext, name: string, what: string): Promise<DmControl> {
  try {
    return await ctx.dm.openControl()
  } catch (e) {
    throw new DmVerityError(`${what}: cannot open ${DM_CONTROL_PATH}`, 'control', name, { cause: e })
  }
}

/** Create the verity device for `partitionPath` and its node; returns where to mount it from. */
export async function createDmverityDevice(ctx: DmVerityContext, partitionPath: string, info: DmVerityInfo): Promise<VerityDevice> {
  const log = ctx.logger ?? nullLogger
  const name = buildDmverityDeviceName(partitionPath, info.offset, info.hash)
  const what = `failed to create dm-verity device ${name}`
  try {
    validateVerityTableInput(info, partitionPath)
  } catch (e) {
    throw new DmVerityError(what, 'validate', name, { cause: e })
  }
  const target = verityTarget(info, partitionPath)
  const control = await openControl(ctx, name, what)
  const undo: { step: string; run: () => Promise<void> }[] = []
  let step: VerityStep = 'validate'
  try {
    validateDmName(name)
    const dm = new DmClient(control, ctx.sleep ? { sleep: ctx.sleep } : {})
    step = 'stale-remove'
    try {
      await dm.deviceRemove(name, dmOptionsDeferredRemoveNoUdev())
      log.info({ name }, 'removed stale dm-verity device')
    } catch (e) {
      log.debug({ name, err: errorChain(e) }, 'stale dm-verity removal (result ignored)')
    }
    step = 'create'
    await dm.deviceCreate(name, dmOptionsReadOnlyNoUdev())
    undo.push({ step: 'remove device', run: () => dm.deviceRemove(name, dmOptionsDeferredRemoveNoUdev()) })
    step = 'table-load'
    await dm.tableLoad(name, [target], dmOptionsReadOnlyNoUdev())
    step = 'resume'
    await dm.deviceSuspend(name, dmOptionsNoUdev())
    step = 'status'
    const { major, minor } = await dm.deviceStatus(name)
    step = 'mknod'
    const path = await makeDeviceNode(ctx.nodes, name, major, minor)
    log.info({ name, path, major, minor, partition: partitionPath }, 'created dm-verity device')
    return { name, path, major, minor }
  } catch (e) {
    const rollbackErrors: string[] = []
    for (const u of undo.reverse()) {
      try {
        await u.run()
      } catch (ue) {
        rollbackErrors.push(`${u.step}: ${formatErrorChain(ue)}`)
        log.warn({ name, err: errorChain(ue) }, `dm-verity create rollback: ${u.step} failed`)
      }
    }
    const err = new DmVerityError(`${what} (step ${step})`, step, name, { cause: e })
    if (rollbackErrors.length) err.context.rollbackErrors = rollbackErrors
    throw err
  } finally {
    await control.close()
  }
}

/** Ensure /dev/mapper, drop anything already at the node path, mknod the block node (§9.8). */
export async function makeDeviceNode(nodes: NodeOps, name: string, major: number, minor: number): Promise<string> {
  const path = mapperPath(name)
  await nodes.mkdirAll(DM_MAPPER_DIR)
  if (await nodes.exists(path)) {
    try {
      await nodes.unlink(path)
    } catch (e) {
      throw new NodeOpError(`failed to remove stale device node ${path}`, path, errnoOf(e), { cause: e })
    }
  }
  try {
    await nodes.mknodBlock(path, VERITY_NODE_MODE, major, minor)
  } catch (e) {
    throw new NodeOpError(`failed to mknod block device ${path}`, path, errnoOf(e), { cause: e })
  }
  return path
}

/**
 * DM_DEV_REMOVE(name, DEFERRED_REMOVE); on success remove the `/dev/mapper` node (unlink failures
 * are logged only). On failure the node is kept (§10, B23, B24).
 */
export async function destroyPartitionDmverityDevice(ctx: DmVerityContext, path: string): Promise<void> {
  const log = ctx.logger ?? nullLogger
  const name = nameFromMapperPath(path)
  const what = 'Failed to destroy dm-verity device'
  const control = await openControl(ctx, name, what)
  try {
    const dm = new DmClient(control, ctx.sleep ? { sleep: ctx.sleep } : {})
    try {
      await dm.deviceRemove(name, dmOptionsDeferredRemoveNoUdev())
    } catch (e) {
      throw new DmVerityError(what, 'remove', name, { cause: new DmVerityError(`remove DmverityDevice ${name}`, 'remove', name, { cause: e }) })
    }
  } finally {
    await control.close()
  }
  if (path.startsWith(`${DM_MAPPER_DIR}/`) && (await ctx.nodes.exists(path))) {
    try {
      await ctx.nodes.unlink(path)
    } catch (e) {
      log.warn({ path, err: errorChain(e) }, 'failed to remove dm-verity device node')
    }
  }
  log.info({ name, path }, 'destroyed dm-verity device')
}

export interface CleanupFailure {
  path: string
  error: unknown
}

/** Destroy every device, last to first; failures are logged and returned, never thrown (§10, B25). */
export async function cleanupDmverityDevices(ctx: DmVerityContext, paths: readonly string[]): Promise<CleanupFailure[]> {
  const log = ctx.logger ?? nullLogger
  const failures: CleanupFailure[] = []
  for (const path of [...paths].reverse()) {
    try {
      await destroyPartitionDmverityDevice(ctx, path)
    } catch (e) {
      log.warn({ path, err: errorChain(e) }, 'failed to clean up dm-verity device')
      failures.push({ path, error: e })
    }
  }
  return failures
}

/** Node paths of every `kata-verity-*` device the kernel knows (sweep for DestroySandbox). */
export async function listVerityDevices(ctx: DmVerityContext): Promise<string[]> {
  const control = await openControl(ctx, '', 'failed to list dm devices')
  try {
    const list = await new DmClient(control).listDevices()
    return list.filter((d) => d.name.startsWith('kata-verity-')).map((d) => mapperPath(d.name))
  } finally {
    await control.close()
  }
}

/**
 * Read a device back from the kernel (DM_TABLE_STATUS): `table: true` gives the loaded table lines
 * (`0 16 verity 1 254:17 254:17 …`, data device as major:minor), `table: false` the status lines
 * (`0 16 verity V` when verified, `C` on corruption). For guest scenarios and diagnostics.
 */
export async function readDmTable(ctx: Pick<DmVerityContext, 'dm'>, name: string, opts: { table: boolean }): Promise<string[]> {
  const control = await ctx.dm.openControl()
  try {
    const targets = await new DmClient(control).tableStatus(name, opts)
    return targets.map((t) => `${t.sectorStart} ${t.length} ${t.targetType}${t.params ? ` ${t.params}` : ''}`)
  } finally {
    await control.close()
  }
}
