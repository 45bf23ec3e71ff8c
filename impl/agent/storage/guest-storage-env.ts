// The real StorageEnv for the guest agent: koffi DM backend on /dev/mapper/control, koffi mknod,
// mount(2), sysfs device discovery. Nothing native is loaded until first use.
import { KoffiDmBackend, LinuxNodeOps } from '../../dmverity/index.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { LinuxMounter } from './linux-mounter.ts'
import type { StorageEnv } from './multi-layer-state.ts'
import { DEFAULT_HOTPLUG_TIMEOUT_MS, devmapperEnabled, systemClock } from './storage-context.ts'
import { SysfsDeviceResolver } from './sysfs-devices.ts'

export interface GuestStorageEnvOptions {
  logger?: Logger
  /** agent.hotplug_timeout in ms (default 3000). */
  hotplugTimeoutMs?: number
  /** Default: KATAREF_USE_DEVMAPPER (on unless `0`). */
  devmapper?: boolean
  runDir?: string
}

export function createGuestStorageEnv(opts: GuestStorageEnvOptions = {}): StorageEnv {
  return {
    logger: opts.logger ?? nullLogger,
    dm: new KoffiDmBackend(),
    nodes: new LinuxNodeOps(),
    mounter: new LinuxMounter(),
    devices: new SysfsDeviceResolver(),
    devmapper: opts.devmapper ?? devmapperEnabled(),
    clock: systemClock,
    hotplugTimeoutMs: opts.hotplugTimeoutMs ?? DEFAULT_HOTPLUG_TIMEOUT_MS,
    ...(opts.runDir !== undefined ? { runDir: opts.runDir } : {}),
  }
}
