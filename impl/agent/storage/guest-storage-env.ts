// The real StorageEnv for the guest agent: koffi DM backend on /dev/mapper/control, koffi mknod,
// mount(2), sysfs device discovery. Nothing native is loaded until first use.
import { DM_CONTROL_PATH, DM_DEV_CREATE, DM_TABLE_LOAD, KoffiDmBackend, LinuxNodeOps, blockingThreadsFromEnv, sharedBlockingPool } from '../../dmverity/index.ts'
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
  /** Worker threads for blocking syscalls (default KATAREF_BLOCKING_THREADS, else 4; 0 = inline). */
  blockingThreads?: number
}

export function createGuestStorageEnv(opts: GuestStorageEnvOptions = {}): StorageEnv {
  const size = opts.blockingThreads ?? blockingThreadsFromEnv()
  const pool = size > 0 ? () => sharedBlockingPool(size) : undefined
  return {
    logger: opts.logger ?? nullLogger,
    // The expensive DM ioctls on worker threads (upstream: spawn_blocking) unless `blockingThreads: 0`
    // or KATAREF_BLOCKING_THREADS=0 (see blocking-pool.ts for the measurements).
    // Only the two expensive DM ioctls go to the workers (measured in the guest: CREATE 18-34 ms,
    // TABLE_LOAD 12-28 ms — add_disk, the verity target's workqueue — resume ~4 ms, STATUS ~2 ms, mount ~1 ms).
    dm: new KoffiDmBackend(DM_CONTROL_PATH, pool, new Set([DM_DEV_CREATE, DM_TABLE_LOAD])),
    nodes: new LinuxNodeOps(),
    mounter: new LinuxMounter('/proc/self/mountinfo'),
    devices: new SysfsDeviceResolver(),
    devmapper: opts.devmapper ?? devmapperEnabled(),
    clock: systemClock,
    hotplugTimeoutMs: opts.hotplugTimeoutMs ?? DEFAULT_HOTPLUG_TIMEOUT_MS,
    ...(opts.runDir !== undefined ? { runDir: opts.runDir } : {}),
  }
}
