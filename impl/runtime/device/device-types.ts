// Device vocabulary shared by the hypervisor drivers (runtime-rs `DeviceType`).
// A BlockModern device is a mutable handle: hotplug writes the guest address back into it,
// and `removeDevice` finds it in the cold-plug list by object identity (Rust: Arc pointer).

export type BlockDeviceDriver = 'virtio-blk-pci' | 'virtio-blk-ccw' | 'virtio-blk-mmio' | 'virtio-pmem' | 'virtio-scsi'

/** One extent of a structured VMDK layout (flat extents over host files). */
export interface VmdkExtent {
  pathOnHost: string
  /** Length in 512-byte sectors. */
  sectors: number
  /** Offset into the host file, in sectors. */
  fileOffset: number
}

export interface VmdkLayout {
  extents: VmdkExtent[]
}

export interface BlockDeviceConfig {
  /** From the sandbox's BlockIndexAllocator; names the node/device `drive-<index>`. */
  index: number
  pathOnHost: string
  readOnly: boolean
  /** O_DIRECT / cache.direct; absent = use `block_device_cache_direct`. */
  isDirect?: boolean
  noDrop: boolean
  discardUnmap?: boolean
  /** `io_uring` | `native` | `threads`; anything else parses as `io_uring`. */
  blkdevAio?: string
  logicalSectorSize?: number
  physicalSectorSize?: number
  vmdk?: VmdkLayout
  /** Written back by hotplug (spec §3.7). */
  pciPath?: string
  scsiAddr?: string
  ccwAddr?: string
}

/** The BlockModern handle: the same object is kept in the cold-plug list and passed to remove. */
export interface BlockModernDevice {
  readonly deviceId: string
  config: BlockDeviceConfig
}

export type DeviceKind =
  | 'Network'
  | 'Vfio'
  | 'VfioModern'
  | 'VhostUserBlk'
  | 'VhostUserNetwork'
  | 'ShareFs'
  | 'HybridVsock'
  | 'Vsock'
  | 'Protection'
  | 'PortDevice'

export type DeviceType =
  | { kind: 'BlockModern'; device: BlockModernDevice }
  | { kind: DeviceKind; config: Record<string, unknown> }

/** Debug form used in error messages, e.g. `Network({"id":"eth0"})` / `BlockModern(drive-3)`. */
export function describeDevice(d: DeviceType): string {
  if (d.kind === 'BlockModern') return `BlockModern(drive-${d.device.config.index})`
  return `${d.kind}(${JSON.stringify(d.config)})`
}
