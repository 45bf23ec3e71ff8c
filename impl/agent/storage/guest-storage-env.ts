// The real StorageEnv for the guest agent: koffi DM backend on /dev/mapper/control, koffi mknod,
// mount(2), sysfs device discovery. Nothing native is loaded until first use.
import { DM_CONTROL_PATH, DM_DEV_CREATE, DM_TABLE_LOAD, KoffiDmBackend, LinuxNodeOps, blockingSyscallsOnThreadpool, sharedBlockingPool } from '../../dmverity/index.ts'
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
  /** Blocking DM ioctls and layer mounts on libuv's threadpool (default: KATAREF_BLOCKING_SYSCALLS, else yes) or inline. */
  syscallsOnThreadpool?: boolean
}

export function createGuestStorageEnv(opts: GuestStorageEnvOptions = {}): StorageEnv {
  const pool = sharedBlockingPool(opts.syscallsOnThreadpool ?? blockingSyscallsOnThreadpool())
  return {
    logger: opts.logger ?? nullLogger,
    // The expensive DM ioctls on the threadpool (upstream: spawn_blocking) unless `syscallsOnThreadpool: false`
    // or KATAREF_BLOCKING_SYSCALLS=inline (see blocking-pool.ts and bench/mount).
    // Of the DM ioctls only the two expensive ones go to the pool (measured in the guest: CREATE 18-34 ms,
    // TABLE_LOAD 12-28 ms — add_disk, the verity target's workqueue — resume ~4 ms, STATUS ~2 ms); the
    // EROFS mount through a verity device (~6-10 ms, disk reads) goes too.
    dm: new KoffiDmBackend(DM_CONTROL_PATH, pool, new Set([DM_DEV_CREATE, DM_TABLE_LOAD])),
    nodes: new LinuxNodeOps(),
    mounter: new LinuxMounter('/proc/self/mountinfo', pool),
    devices: new SysfsDeviceResolver(),
    devmapper: opts.devmapper ?? devmapperEnabled(),
    clock: systemClock,
    hotplugTimeoutMs: opts.hotplugTimeoutMs ?? DEFAULT_HOTPLUG_TIMEOUT_MS,
    ...(opts.runDir !== undefined ? { runDir: opts.runDir } : {}),
  }
}
