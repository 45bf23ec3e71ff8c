// DmOptions: the per-command flags plus the udev cookie flags (§9.5, §9.6, §9.9), and the
// devicemapper-rs library rule that decides what actually lands in dm_ioctl.event_nr.
import { DmCmd, DmFlag } from './dm-ioctl.ts'

/** udev cookie flags (upper 16 bits of event_nr). */
export const DmUdevFlag = {
  DISABLE_DM_RULES: 0x0001,
  DISABLE_SUBSYSTEM_RULES: 0x0002,
  DISABLE_DISK_RULES: 0x0004,
  DISABLE_OTHER_RULES: 0x0008,
  LOW_PRIORITY: 0x0010,
  DISABLE_LIBRARY_FALLBACK: 0x0020,
  PRIMARY_SOURCE: 0x0040,
} as const
export const DM_UDEV_FLAGS_SHIFT = 16
export const DM_UDEV_FLAGS_MASK = 0xffff0000
export const DM_COOKIE_MAGIC = 0x0d4d

/** The five DISABLE_* flags: what a udev-less guest asks for (0x002F). */
export const DM_UDEV_NO_UDEV_SET =
  DmUdevFlag.DISABLE_DM_RULES |
  DmUdevFlag.DISABLE_SUBSYSTEM_RULES |
  DmUdevFlag.DISABLE_DISK_RULES |
  DmUdevFlag.DISABLE_OTHER_RULES |
  DmUdevFlag.DISABLE_LIBRARY_FALLBACK

export interface DmOptions {
  /** dm_ioctl.flags requested (masked per command when sent). */
  readonly flags: number
  /** udev cookie flags (16 bits), shifted into event_nr when a cookie is used. */
  readonly udevFlags: number
}

export const dmOptionsDefault = (): DmOptions => ({ flags: 0, udevFlags: 0 })
/** No udev rules, no library fallback: the guest makes /dev/mapper nodes itself. */
export const dmOptionsNoUdev = (): DmOptions => ({ flags: 0, udevFlags: DM_UDEV_NO_UDEV_SET })
/** Read-only device/table (CREATE and TABLE_LOAD of a verity device). */
export const dmOptionsReadOnlyNoUdev = (): DmOptions => ({ flags: DmFlag.READONLY, udevFlags: DM_UDEV_NO_UDEV_SET })
/** DM_DEV_REMOVE that defers when the device is still open. */
export const dmOptionsDeferredRemoveNoUdev = (): DmOptions => ({ flags: DmFlag.DEFERRED_REMOVE, udevFlags: DM_UDEV_NO_UDEV_SET })
/** Upstream's udev-aware remove options (§9.9): with udev the library syncs, so no cookie flags. */
export function dmOptionsDeferredRemove(udevPresent: boolean): DmOptions {
  return udevPresent ? { flags: DmFlag.DEFERRED_REMOVE, udevFlags: 0 } : dmOptionsDeferredRemoveNoUdev()
}

/** Commands for which the library may send a udev cookie at all. */
const COOKIE_COMMANDS: ReadonlySet<number> = new Set([DmCmd.DEV_REMOVE, DmCmd.DEV_RENAME, DmCmd.DEV_SUSPEND, DmCmd.DEV_WAIT])

/**
 * event_nr the library puts on the wire (§9.6). kataref never performs udev semaphore sync
 * (`udevSync` false: no SysV semaphores from Node), so this is 0 for every command — which is
 * exactly what upstream sends in a udev-less guest. With `udevSync` true it reproduces the
 * cookie upstream would send for the given 16-bit cookie value.
 */
export function wireEventNr(cmd: DmCmd, opts: DmOptions, udevSync: { cookie: number } | false): number {
  if (!COOKIE_COMMANDS.has(cmd)) return 0
  if (udevSync === false) return 0
  if (cmd === DmCmd.DEV_SUSPEND && (opts.flags & DmFlag.SUSPEND) !== 0) return 0
  const flags = (opts.udevFlags | DmUdevFlag.PRIMARY_SOURCE) & 0xffff
  return ((flags << DM_UDEV_FLAGS_SHIFT) | (udevSync.cookie & 0xffff)) >>> 0
}

/** Flags on the wire: requested flags masked by the command's allowed set. */
export function maskFlags(allowed: number | undefined, opts: DmOptions): number {
  return (opts.flags & (allowed ?? 0)) >>> 0
}
