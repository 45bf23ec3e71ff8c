// Multi-layer EROFS rootfs on the host (runtime-rs erofs_rootfs.rs): turns the container's rootfs
// mounts into block devices for the guest and the Storage entries telling the agent how to mount
// them. In GPT mode every EROFS layer becomes one partition of a single read-only VMDK disk whose
// extents reference the layer files in place (§1, §9, §12, §13).
//
// Differences from upstream, on purpose: a failure half-way through `create` detaches what was
// attached and removes the files it made (upstream leaves them, §13); dm-verity options are also
// produced for a single raw layer (§15.4); mixing fsmerge and GPT layers is refused (§15.5).
import { join } from 'node:path'
import { stat } from 'node:fs/promises'
import { InvalidInputError, KatarefError, Code, errorMessage } from '../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../types/logger.ts'
import type { BlockDeviceDriver, VmdkLayout } from '../../device/device-types.ts'
import { assembleGptDisk, MERGED_VMDK_FILE, type GptVmdkDisk } from '../../../../images/gpt/index.ts'
import { chunkExtents } from '../../../../images/vmdk/extents.ts'
import { readDmVeritySidecar, dmVeritySidecarPath, dmVerityPartitionOptions, type DmVerityQuirks } from '../../../types/dmverity/index.ts'
import {
  type RootfsMount, checkBlockDeviceCount, isErofs, isExt4, isOverlayExact, selectErofsMode,
} from './multi-layer-mounts.ts'
import {
  type StorageEntry, STORAGE_DRIVER, guestRootfsMountPoint,
  OVERLAY_LOWER, OVERLAY_UPPER, MULTI_LAYER, GPT_PARTITIONED, partitionNumberOption,
} from './storage.ts'

/** A block device attached to the sandbox, with whichever guest address its driver yields. */
export interface AttachedBlockDevice {
  deviceId: string
  pciPath?: string
  scsiAddr?: string
  ccwAddr?: string
  /** Guest device path (mmio / pmem). */
  virtPath?: string
}

/** The slice of the device manager the rootfs needs. */
export interface RootfsDeviceManager {
  attachBlock(cfg: { pathOnHost: string; readOnly: boolean; vmdk?: VmdkLayout }): Promise<AttachedBlockDevice>
  removeDevice(deviceId: string): Promise<void>
}

export interface ErofsRootfsOptions {
  sid: string
  cid: string
  mounts: readonly RootfsMount[]
  blockDriver: BlockDeviceDriver
  devices: RootfsDeviceManager
  /** Host run directory; the container directory is `<runDir>/<sid>/<cid>`. */
  runDir?: string
  /** Prefix for guest paths in rootless mode. */
  rootlessPrefix?: string
  dmVerityQuirks?: DmVerityQuirks
  /** GUIDs for the GPT head, for reproducible tests. */
  gptGuids?: { disk: string; partitions: string[] }
  logger?: Logger
}

function guestSource(driver: string, d: AttachedBlockDevice): string {
  const src = driver === 'blk' ? d.pciPath : driver === 'scsi' ? d.scsiAddr : driver === 'blk-ccw' ? d.ccwAddr : d.virtPath
  if (src === undefined) throw new KatarefError(`block device ${d.deviceId} has no guest address for storage driver ${driver}`, Code.INTERNAL, { deviceId: d.deviceId })
  return src
}

const keepOriginal = (o: string) => o !== 'loop' && !o.startsWith('device=') && !o.startsWith('X-kata.')

export class ErofsRootfs {
  /** Device ids in attach (mount) order; the first is the rootfs device. */
  readonly deviceIds: string[] = []
  readonly containerDir: string
  /** Devices still attached, in attach order. */
  #attached: string[] = []
  #rw: StorageEntry | undefined
  #erofs: StorageEntry[] = []
  #disk: GptVmdkDisk | undefined
  #devices: RootfsDeviceManager
  #cleaned = false

  private constructor(containerDir: string, devices: RootfsDeviceManager) {
    this.containerDir = containerDir
    this.#devices = devices
  }

  get rootfsDeviceId(): string {
    const id = this.deviceIds[0]
    if (id === undefined) throw new InvalidInputError('multi-layer EROFS rootfs', 'no devices attached for multi-layer erofs rootfs')
    return id
  }

  /** The GPT disk's extents and files, when GPT mode was used. */
  get gptDisk(): GptVmdkDisk | undefined {
    return this.#disk
  }

  #recordDevice(id: string): void {
    this.deviceIds.push(id)
    this.#attached.push(id)
  }

  /** rw storage first (if any), then EROFS storages in partition order. */
  getStorages(): StorageEntry[] {
    return [...(this.#rw ? [this.#rw] : []), ...this.#erofs]
  }

  static async create(o: ErofsRootfsOptions): Promise<ErofsRootfs> {
    const logger = o.logger ?? nullLogger
    checkBlockDeviceCount(o.mounts)
    const mode = selectErofsMode(o.mounts)
    const containerDir = join(o.runDir ?? '/run/kata-containers', o.sid, o.cid)
    const rootfs = new ErofsRootfs(containerDir, o.devices)
    const driver = STORAGE_DRIVER[o.blockDriver]
    if (driver === undefined) throw new InvalidInputError('block driver', `${String(o.blockDriver)} has no agent storage driver`)
    const mountPoint = guestRootfsMountPoint(o.cid, o.rootlessPrefix)
    const mkdirOptions = o.mounts.filter(isOverlayExact).flatMap((m) => m.options
      .filter((x) => x.startsWith('X-containerd.mkdir.path='))
      .map((x) => `X-kata.mkdir.path=${x.slice('X-containerd.mkdir.path='.length)}`))
    try {
      let erofsDone = false
      for (const m of o.mounts) {
        if (isExt4(m)) {
          const dev = await o.devices.attachBlock({ pathOnHost: m.source, readOnly: false })
          rootfs.#recordDevice(dev.deviceId)
          rootfs.#rw = {
            driver, driverOptions: [], source: guestSource(driver, dev), fstype: 'ext4', mountPoint,
            options: [...m.options.filter((x) => x !== 'loop'), OVERLAY_UPPER, MULTI_LAYER],
          }
        } else if (isErofs(m) && !erofsDone && mode) {
          erofsDone = true
          if (mode.kind === 'gpt') {
            await rootfs.#createGpt(mode.layers, o, driver, mountPoint, mkdirOptions, logger)
          } else if (mode.kind === 'single') {
            const dev = await o.devices.attachBlock({ pathOnHost: m.source, readOnly: true })
            rootfs.#recordDevice(dev.deviceId)
            const sidecar = dmVeritySidecarPath(m.options)
            const verity = sidecar === undefined ? [] : await verityOptions(sidecar, m.source, 0, o.dmVerityQuirks)
            rootfs.#erofs.push({
              driver, driverOptions: [], source: guestSource(driver, dev), fstype: 'erofs', mountPoint,
              options: [...m.options.filter((x) => keepOriginal(x) && !x.startsWith('X-containerd.dmverity=')), OVERLAY_LOWER, MULTI_LAYER, ...verity],
            })
          } else {
            const files = [m.source, ...mode.devices]
            const extents = []
            for (const f of files) {
              const st = await stat(f).catch((e: unknown) => { throw new InvalidInputError(`EROFS blob ${f}`, 'cannot be stat-ed', { path: f }, { cause: e }) })
              extents.push(...chunkExtents(f, Math.ceil(st.size / 512)).map((e) => ({ pathOnHost: e.path, sectors: e.sectors, fileOffset: e.fileOffset })))
            }
            const dev = await o.devices.attachBlock({ pathOnHost: join(containerDir, MERGED_VMDK_FILE), readOnly: true, vmdk: { extents } })
            rootfs.#recordDevice(dev.deviceId)
            rootfs.#erofs.push({
              driver, driverOptions: [], source: guestSource(driver, dev), fstype: 'erofs', mountPoint,
              options: [...m.options.filter(keepOriginal), OVERLAY_LOWER, MULTI_LAYER],
            })
          }
        }
      }
      return rootfs
    } catch (e) {
      // Upstream leaves attached devices and written files to the caller; we undo our own work.
      await rootfs.cleanup().catch((ce: unknown) => logger.warn({ err: ce }, 'rollback of multi-layer EROFS rootfs failed'))
      throw e
    }
  }

  async #createGpt(layers: RootfsMount[], o: ErofsRootfsOptions, driver: string, mountPoint: string, mkdirOptions: string[], logger: Logger): Promise<void> {
    const disk = await assembleGptDisk({
      containerDir: this.containerDir,
      layers: layers.map((m) => m.source),
      ...(o.gptGuids ? { guids: o.gptGuids } : {}),
      logger,
    })
    this.#disk = disk
    const bySource = new Map<string, RootfsMount>()
    for (const m of layers) if (!bySource.has(m.source)) bySource.set(m.source, m)
    // dm-verity options first: a bad sidecar must fail before a device is attached.
    const verity: string[][] = []
    for (const p of disk.layout.partitions) {
      const m = bySource.get(p.path)
      const sidecar = m ? dmVeritySidecarPath(m.options) : undefined
      verity.push(sidecar === undefined ? [] : await verityOptions(sidecar, p.path, p.index, o.dmVerityQuirks))
    }
    const vmdk: VmdkLayout = { extents: disk.extents.map((e) => ({ pathOnHost: e.path, sectors: e.sectors, fileOffset: e.fileOffset })) }
    let dev: AttachedBlockDevice
    try {
      dev = await o.devices.attachBlock({ pathOnHost: join(this.containerDir, MERGED_VMDK_FILE), readOnly: true, vmdk })
    } catch (e) {
      throw new KatarefError(`failed to attach GPT VMDK block device: ${errorMessage(e)}`, Code.INTERNAL, {}, { cause: e })
    }
    this.#recordDevice(dev.deviceId)
    const source = guestSource(driver, dev)
    for (const p of disk.layout.partitions) {
      this.#erofs.push({
        driver, driverOptions: [], source, fstype: 'erofs', mountPoint,
        options: [OVERLAY_LOWER, MULTI_LAYER, GPT_PARTITIONED, partitionNumberOption(p.number), ...verity[p.index]!, ...(p.index === 0 ? mkdirOptions : [])],
      })
    }
  }

  /**
   * Detaches every device (in attach order; an error stops here and can be retried), then deletes
   * the head and padding files. A second call does nothing.
   */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return
    while (this.#attached.length > 0) {
      await this.#devices.removeDevice(this.#attached[0]!)
      this.#attached.shift()
    }
    if (this.#disk) await this.#disk.files.cleanup()
    this.#cleaned = true
  }
}

async function verityOptions(sidecarPath: string, layerPath: string, index: number, quirks: DmVerityQuirks | undefined): Promise<string[]> {
  try {
    const sidecar = await readDmVeritySidecar(sidecarPath)
    return await dmVerityPartitionOptions({ sidecar, layerPath, ...(quirks ? { quirks } : {}) })
  } catch (e) {
    throw new InvalidInputError(`dm-verity metadata file ${sidecarPath}`, `failed to parse dm-verity metadata file ${sidecarPath} for partition ${index}: ${errorMessage(e)}`, { index }, { cause: e })
  }
}
