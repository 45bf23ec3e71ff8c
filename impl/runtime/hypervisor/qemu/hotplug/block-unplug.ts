// Block hot-unplug over QMP (spec §5), runtime-rs `hotunplug_block_device` order:
// device_del → wait for DEVICE_DELETED of this id → blockdev-del → remove-fd per fdset.
// Our wait is event-driven (the client reads the socket continuously, so no `query-version`
// polling is needed) and leaves every other event queued (gap §12.6 fixed).
import { DeadlineError, errorMessage } from '../../../../types/errors.ts'
import { nullLogger } from '../../../../types/logger.ts'
import type { BlockDeviceDriver } from '../../../device/device-types.ts'
import { blockNodeName } from '../../../device/block-index-allocator.ts'
import type { QmpClient } from '../qmp/qmp-client.ts'
import { isDeviceDeleted, type QmpEvent } from '../qmp/qmp-types.ts'
import type { BlockHotplugContext } from './hotplug-context.ts'
import { HotplugError } from './hotplug-errors.ts'

export const DEVICE_DELETED_TIMEOUT_MS = 10_000

/** Rust `Duration` debug form: `10s`, `250ms`. */
function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/**
 * Wait for `DEVICE_DELETED` whose `data.device` is `id`. Events for other ids, and the
 * `…/virtio-backend` event without `device`, do not end the wait and stay queued.
 */
export async function waitForDeviceDeleted(qmp: QmpClient, id: string, timeoutMs = DEVICE_DELETED_TIMEOUT_MS, signal?: AbortSignal): Promise<QmpEvent> {
  try {
    return await qmp.waitForEvent(isDeviceDeleted(id), { timeoutMs, what: `DEVICE_DELETED for ${id}`, ...(signal ? { signal } : {}) })
  } catch (e) {
    if (e instanceof DeadlineError) {
      throw new DeadlineError(`timed out (${formatDuration(timeoutMs)}) waiting for DEVICE_DELETED event for ${id}`, timeoutMs, { id }, { cause: e })
    }
    throw e
  }
}

/** Unplug `drive-<index>`; on every path a virtio-blk-ccw driver releases the CCW slot. */
export async function hotunplugBlockDevice(ctx: BlockHotplugContext, driver: BlockDeviceDriver, index: number): Promise<void> {
  const log = (ctx.logger ?? nullLogger).child({ driver, index })
  const id = blockNodeName(index)
  let failure: unknown
  try {
    try {
      await ctx.qmp.execute('device_del', { id })
    } catch (e) {
      throw HotplugError.wrap(`device_del for block device ${id}`, e, { id })
    }
    try {
      await waitForDeviceDeleted(ctx.qmp, id, ctx.deviceDeletedTimeoutMs ?? DEVICE_DELETED_TIMEOUT_MS)
    } catch (e) {
      throw HotplugError.wrap('hotunplug_block_device(): waiting for DEVICE_DELETED', e, { id })
    }
    // The frontend is gone: its bridge slot is free again (gap §12.2 fixed unless disabled).
    if (ctx.releaseSlotOnUnplug ?? true) ctx.slots.release(id)
    try {
      await ctx.qmp.execute('blockdev-del', { 'node-name': id })
    } catch (e) {
      throw HotplugError.wrap(`blockdev_del for block device ${id}`, e, { id })
    }
    await ctx.fdsets.removeAll(ctx.qmp, id, log)
  } catch (e) {
    failure = e
    log.warn({ id, err: errorMessage(e) }, 'hotunplug block device failed')
  }
  // Released even when device_del failed and the device is still there (gap §12.5, mirrored).
  if (driver === 'virtio-blk-ccw' && ctx.ccw?.has(id)) ctx.ccw.removeDevice(id)
  if (failure !== undefined) throw failure
}
