// Storage entries the runtime sends the agent for a multi-layer EROFS rootfs (§12).
import type { BlockDeviceDriver } from '../../device/device-types.ts'

export interface StorageEntry {
  driver: string
  driverOptions: string[]
  source: string
  fstype: string
  options: string[]
  mountPoint: string
}

/** Agent storage driver names for each configured block driver. */
export const STORAGE_DRIVER: Record<BlockDeviceDriver, string> = {
  'virtio-blk-pci': 'blk',
  'virtio-scsi': 'scsi',
  'virtio-blk-ccw': 'blk-ccw',
  'virtio-blk-mmio': 'mmioblk',
  'virtio-pmem': 'nvdimm',
}

/** Where the guest mounts a container's rootfs (§12). */
export function guestRootfsMountPoint(cid: string, rootlessPrefix = ''): string {
  return `${rootlessPrefix}/run/kata-containers/shared/containers/passthrough/${cid}/rootfs`
}

export const OVERLAY_LOWER = 'X-kata.overlay-lower'
export const OVERLAY_UPPER = 'X-kata.overlay-upper'
export const MULTI_LAYER = 'X-kata.multi-layer=true'
export const GPT_PARTITIONED = 'X-kata.gpt-partitioned=true'
export const partitionNumberOption = (n: number) => `X-kata.partition-number=${n}`
