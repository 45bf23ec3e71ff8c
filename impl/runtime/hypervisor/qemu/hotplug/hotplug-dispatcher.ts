// QemuInner-level device hot(un)plug (spec §3 step 7, §5 dispatcher and `remove_device`).
// Only BlockModern is handled; other device types are rejected without touching QMP.
import { nullLogger, type Logger } from '../../../../types/logger.ts'
import { describeDevice, type BlockDeviceDriver, type BlockModernDevice, type DeviceType } from '../../../device/device-types.ts'
import type { QmpClient } from '../qmp/qmp-client.ts'
import { BlockFdsets } from './block-fdsets.ts'
import { PciBridgeSlots } from './pci-slots.ts'
import { hotplugBlockDevice, type BlockHotplugRequest } from './block-hotplug.ts'
import { hotunplugBlockDevice } from './block-unplug.ts'
import type { BlockHotplugContext } from './hotplug-context.ts'
import { HotplugError } from './hotplug-errors.ts'

export const INDEP_IOTHREAD_ID = 'indep_iothread_0'

export interface QemuHotplugConfig {
  blockDeviceDriver: BlockDeviceDriver
  blockDeviceAio?: string
  blockDeviceCacheDirect: boolean
  enableIothreads: boolean
  indepIothreads: number
}

/** What the QEMU driver holds; `hotplug` is absent until QMP is connected. */
export interface QemuDeviceState {
  config: QemuHotplugConfig
  hotplug: BlockHotplugContext | undefined
  /** Devices queued for cold plug at boot. */
  coldPlugDevices: DeviceType[]
  logger?: Logger
}

function requireQmp(s: QemuDeviceState): BlockHotplugContext {
  if (!s.hotplug) throw new HotplugError('QMP not initialized')
  return s.hotplug
}

/** Hot-plug a BlockModern device and write its guest address back into the handle. */
export async function hotplugDevice(s: QemuDeviceState, d: DeviceType): Promise<void> {
  const ctx = requireQmp(s)
  if (d.kind !== 'BlockModern') throw new HotplugError(`hotplug for ${describeDevice(d)} is not implemented in kataref`, { kind: d.kind })
  const cfg = d.device.config
  const driver = s.config.blockDeviceDriver
  const req: BlockHotplugRequest = {
    driver,
    index: cfg.index,
    pathOnHost: cfg.pathOnHost,
    direct: cfg.isDirect ?? s.config.blockDeviceCacheDirect,
    readOnly: cfg.readOnly,
    noDrop: cfg.noDrop,
  }
  const aio = cfg.blkdevAio ?? s.config.blockDeviceAio
  if (aio !== undefined) req.aio = aio
  if (cfg.discardUnmap !== undefined) req.discardUnmap = cfg.discardUnmap
  if (cfg.logicalSectorSize !== undefined) req.logicalBlockSize = cfg.logicalSectorSize
  if (cfg.physicalSectorSize !== undefined) req.physicalBlockSize = cfg.physicalSectorSize
  if (cfg.vmdk) req.vmdk = cfg.vmdk
  if (s.config.enableIothreads && s.config.indepIothreads > 0 && driver === 'virtio-blk-pci') req.iothread = INDEP_IOTHREAD_ID
  let res
  try {
    res = await hotplugBlockDevice(ctx, req)
  } catch (e) {
    throw HotplugError.wrap('hotplug block device', e, { index: cfg.index })
  }
  if ('pciPath' in res) cfg.pciPath = res.pciPath
  else if ('ccwAddr' in res) cfg.ccwAddr = res.ccwAddr
  else cfg.scsiAddr = res.scsiAddr
}

/** Dispatcher: BlockModern → block unplug; anything else → unsupported, no QMP. */
export async function hotunplugDevice(s: QemuDeviceState, d: DeviceType): Promise<void> {
  const ctx = requireQmp(s)
  if (d.kind !== 'BlockModern') throw new HotplugError(`hotunplug for ${describeDevice(d)} is currently unsupported`, { kind: d.kind })
  try {
    await hotunplugBlockDevice(ctx, s.config.blockDeviceDriver, d.device.config.index)
  } catch (e) {
    throw HotplugError.wrap('hotunplug block device', e, { index: d.device.config.index })
  }
}

/** Dispatcher, then drop this very handle (identity) from the pending cold-plug list. */
export async function removeDevice(s: QemuDeviceState, d: DeviceType): Promise<void> {
  await hotunplugDevice(s, d)
  const handle: BlockModernDevice | undefined = d.kind === 'BlockModern' ? d.device : undefined
  const before = s.coldPlugDevices.length
  for (let i = s.coldPlugDevices.length - 1; i >= 0; i--) {
    const e = s.coldPlugDevices[i]!
    if (e.kind === 'BlockModern' && e.device === handle) s.coldPlugDevices.splice(i, 1)
  }
  ;(s.logger ?? nullLogger).debug({ removed: before - s.coldPlugDevices.length }, 'removeDevice: cold-plug list updated')
}

/** Build the hotplug context after QMP connects (spec §1, §4): bridge map and fdset map from query-fdsets. */
export async function initHotplugContext(
  qmp: QmpClient,
  opts: { defaultBridges: number; ccw?: BlockHotplugContext['ccw']; logger?: Logger } & Pick<BlockHotplugContext, 'pciAddrFormat' | 'releaseSlotOnUnplug' | 'deviceDeletedTimeoutMs'>,
): Promise<BlockHotplugContext> {
  const fdsets = new BlockFdsets()
  await fdsets.refresh(qmp)
  const ctx: BlockHotplugContext = { qmp, slots: new PciBridgeSlots(opts.defaultBridges), fdsets }
  if (opts.ccw) ctx.ccw = opts.ccw
  if (opts.logger) ctx.logger = opts.logger
  if (opts.pciAddrFormat) ctx.pciAddrFormat = opts.pciAddrFormat
  if (opts.releaseSlotOnUnplug !== undefined) ctx.releaseSlotOnUnplug = opts.releaseSlotOnUnplug
  if (opts.deviceDeletedTimeoutMs !== undefined) ctx.deviceDeletedTimeoutMs = opts.deviceDeletedTimeoutMs
  return ctx
}
