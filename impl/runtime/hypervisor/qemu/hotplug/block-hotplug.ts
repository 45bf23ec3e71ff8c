// Block hotplug over QMP (spec §3), exact command order of runtime-rs `hotplug_block_device`:
// [add-fd…] → blockdev-add (format node over protocol node) → device_add (per driver),
// with `deviceAddWithRollback` undoing the node on device_add failure.
import { errorMessage } from '../../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../../types/logger.ts'
import type { BlockDeviceDriver, VmdkLayout } from '../../../device/device-types.ts'
import { blockNodeName } from '../../../device/block-index-allocator.ts'
import { blockFdOpaque } from './block-fdsets.ts'
import { prepareBlockSource } from './block-source.ts'
import type { BlockHotplugContext } from './hotplug-context.ts'
import { HotplugError } from './hotplug-errors.ts'
import { findFreeSlotInQueryPci, formatPciAddr, pciPathOf, type FreeSlot, type QueryPciBus } from './pci-slots.ts'

export interface BlockHotplugRequest {
  driver: BlockDeviceDriver
  index: number
  pathOnHost: string
  /** `threads` | `native` | `io_uring`; anything else → `io_uring`. */
  aio?: string
  /** cache.direct / O_DIRECT; absent → no `cache` on the protocol node and no O_DIRECT. */
  direct?: boolean
  readOnly: boolean
  noDrop: boolean
  discardUnmap?: boolean
  logicalBlockSize?: number
  physicalBlockSize?: number
  vmdk?: VmdkLayout
  iothread?: string
}

/** What the guest will see: exactly one of the three, by driver. */
export type BlockHotplugResult = { pciPath: string } | { scsiAddr: string } | { ccwAddr: string }

export const SCSI_BUS = 'scsi0.0'

export function parseAio(s: string | undefined): 'threads' | 'native' | 'io_uring' {
  return s === 'threads' || s === 'native' || s === 'io_uring' ? s : 'io_uring'
}

/** SCSI address of a block index (spec §2): scsi-id = index >> 8, lun = index & 0xff. Index must fit u16. */
export function scsiAddressOf(index: number): { scsiId: number; lun: number; address: string } {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff) {
    throw new HotplugError(`virtio-scsi index ${index} does not fit in u16: out of range integral type conversion attempted`, { index })
  }
  const scsiId = index >> 8
  const lun = index & 0xff
  return { scsiId, lun, address: `${scsiId}:${lun}` }
}

/** `blockdev-add` arguments (spec §3 step 3). */
export function blockdevAddArgs(nodeName: string, filename: string, isRegularFile: boolean, r: BlockHotplugRequest): Record<string, unknown> {
  const file: Record<string, unknown> = {
    driver: isRegularFile ? 'file' : 'host_device',
    filename,
    aio: parseAio(r.aio),
  }
  if (r.direct !== undefined) file.cache = { direct: r.direct }
  if (r.noDrop) file['drop-cache'] = true
  file['read-only'] = r.readOnly
  if (r.discardUnmap) file.discard = 'unmap'

  const fmt: Record<string, unknown> = { driver: r.vmdk ? 'vmdk' : 'raw', 'node-name': nodeName, 'read-only': r.readOnly }
  if (r.vmdk || r.readOnly) fmt['force-share'] = true
  if (r.discardUnmap) fmt.discard = 'unmap'
  fmt.file = file
  return fmt
}

/** `blockdev-del` the node, then `remove-fd` its fdsets (the rollback of steps 2–3). */
async function deleteNode(ctx: BlockHotplugContext, node: string, log: Logger): Promise<void> {
  await ctx.qmp.execute('blockdev-del', { 'node-name': node })
  await ctx.fdsets.removeAll(ctx.qmp, node, log)
}

/**
 * `device_add`; on failure `blockdev-del {node-name}` (warning only if that fails; on success
 * the node's fdsets are removed) and the original error is returned as `device_add <err>`.
 */
export async function deviceAddWithRollback(ctx: BlockHotplugContext, nodeName: string, args: Record<string, unknown>): Promise<void> {
  const log = ctx.logger ?? nullLogger
  try {
    await ctx.qmp.execute('device_add', args)
  } catch (addErr) {
    try {
      await deleteNode(ctx, nodeName, log)
    } catch (delErr) {
      log.warn({ nodeName, err: errorMessage(delErr) }, 'rollback blockdev-del after failed device_add failed')
    }
    throw new HotplugError(`device_add ${errorMessage(addErr)}`, { nodeName, args }, { cause: addErr })
  }
}

/** Hot-plug one block device; returns its guest address. */
export async function hotplugBlockDevice(ctx: BlockHotplugContext, r: BlockHotplugRequest): Promise<BlockHotplugResult> {
  const log = (ctx.logger ?? nullLogger).child({ driver: r.driver, index: r.index })
  const node = blockNodeName(r.index)

  // 1. duplicate id: nothing sent
  if (ctx.fdsets.has(node)) throw new HotplugError(`duplicate QEMU block device ID ${node}`, { nodeName: node })

  // 2. open the source, add-fd each descriptor
  let prepared
  try {
    prepared = await prepareBlockSource(r.pathOnHost, r.vmdk, r.readOnly, r.direct ?? false, async (fd, label) => {
      const ret = await ctx.qmp.execute<{ 'fdset-id': number; fd: number }>('add-fd', { opaque: blockFdOpaque(node, label) }, { fds: [fd] })
      ctx.fdsets.add(node, ret['fdset-id'])
      return `/dev/fdset/${ret['fdset-id']}`
    })
  } catch (e) {
    await ctx.fdsets.removeAll(ctx.qmp, node, log)
    throw e
  }

  // 3. blockdev-add
  try {
    await ctx.qmp.execute('blockdev-add', blockdevAddArgs(node, prepared.filename, prepared.isRegularFile, r))
  } catch (e) {
    await ctx.fdsets.removeAll(ctx.qmp, node, log)
    throw new HotplugError(`blockdev-add backend ${errorMessage(e)}`, { nodeName: node }, { cause: e })
  }

  // 4. common device_add arguments
  const common: Record<string, unknown> = { drive: node }
  if (r.discardUnmap && r.driver !== 'virtio-scsi') common.discard = true
  if (r.logicalBlockSize && r.logicalBlockSize > 0) common.logical_block_size = r.logicalBlockSize
  if (r.physicalBlockSize && r.physicalBlockSize > 0) common.physical_block_size = r.physicalBlockSize

  // 5. per driver
  switch (r.driver) {
    case 'virtio-scsi':
      return plugScsi(ctx, r, node, common)
    case 'virtio-blk-ccw':
      return plugCcw(ctx, r, node, common)
    default:
      return plugPci(ctx, r, node, common)
  }
}

async function plugScsi(ctx: BlockHotplugContext, r: BlockHotplugRequest, node: string, common: Record<string, unknown>): Promise<BlockHotplugResult> {
  // Upstream converts to u16 only here, after blockdev-add; the node stays behind (gap §12.3, mirrored).
  const { scsiId, lun, address } = scsiAddressOf(r.index)
  const args: Record<string, unknown> = { driver: 'scsi-hd', ...common, bus: SCSI_BUS, id: node, 'scsi-id': scsiId, lun }
  if (!r.readOnly) args['share-rw'] = true
  await deviceAddWithRollback(ctx, node, args)
  return { scsiAddr: address }
}

async function plugCcw(ctx: BlockHotplugContext, r: BlockHotplugRequest, node: string, common: Record<string, unknown>): Promise<BlockHotplugResult> {
  const log = ctx.logger ?? nullLogger
  // Cleanup before a CCW-side failure: the blockdev-del error, if any, is what the caller gets (gap §12.4, mirrored).
  const ccw = ctx.ccw
  if (!ccw) {
    await deleteNode(ctx, node, log)
    throw new HotplugError('CCW subchannel not available for virtio-blk-ccw hotplug', { nodeName: node })
  }
  let slot: number
  try {
    slot = ccw.addDevice(node)
  } catch (e) {
    await deleteNode(ctx, node, log)
    throw HotplugError.wrap('CCW subchannel add_device failed', e, { nodeName: node })
  }
  const args: Record<string, unknown> = { driver: 'virtio-blk-ccw', ...common, id: node, devno: ccw.devno(slot) }
  if (!r.readOnly) args['share-rw'] = true
  try {
    await deviceAddWithRollback(ctx, node, args)
  } catch (e) {
    try {
      ccw.removeDevice(node)
    } catch (relErr) {
      log.warn({ nodeName: node, err: errorMessage(relErr) }, 'release CCW slot after failed device_add failed')
    }
    throw e
  }
  return { ccwAddr: ccw.guestAddress(slot) }
}

async function findFreeSlot(ctx: BlockHotplugContext): Promise<FreeSlot | undefined> {
  const inMemory = ctx.slots.findFree()
  if (inMemory) return inMemory
  const info = await ctx.qmp.execute<QueryPciBus[]>('query-pci')
  return findFreeSlotInQueryPci(info)
}

async function plugPci(ctx: BlockHotplugContext, r: BlockHotplugRequest, node: string, common: Record<string, unknown>): Promise<BlockHotplugResult> {
  const log = ctx.logger ?? nullLogger
  const free = await findFreeSlot(ctx)
  if (!free) {
    try {
      await deleteNode(ctx, node, log)
    } catch (e) {
      log.warn({ nodeName: node, err: errorMessage(e) }, 'blockdev-del after no free PCI slot failed')
    }
    throw new HotplugError('no free slots on PCI bridges', { nodeName: node })
  }
  const args: Record<string, unknown> = {
    driver: 'virtio-blk-pci',
    ...common,
    id: node,
    bus: free.bridgeId,
    addr: formatPciAddr(free.slot, ctx.pciAddrFormat ?? 'hex'),
  }
  if (!r.readOnly) args['share-rw'] = true
  if (r.iothread) args.iothread = r.iothread
  await deviceAddWithRollback(ctx, node, args)

  let pciPath: string
  try {
    pciPath = pciPathOf(await ctx.qmp.execute<QueryPciBus[]>('query-pci'), node)
  } catch (e) {
    throw HotplugError.wrap('get device by qdev_id failed', e, { nodeName: node })
  }
  ctx.slots.record(free.bridgeId, free.slot, node)
  return { pciPath }
}
