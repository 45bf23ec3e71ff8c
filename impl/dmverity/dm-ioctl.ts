// Byte-exact `struct dm_ioctl` / `struct dm_target_spec` codec and the DM ioctl request numbers
// (agent-dmverity-erofs.md §9.2–§9.5; layout of the kernel's include/uapi/linux/dm-ioctl.h, x86_64 LE).
// Pure bytes: no I/O here, so every field is unit-testable on a host without device-mapper.

/** sizeof(struct dm_ioctl). */
export const DM_IOCTL_SIZE = 312
/** sizeof(struct dm_target_spec). */
export const DM_TARGET_SPEC_SIZE = 40
export const DM_NAME_LEN = 128
export const DM_UUID_LEN = 129
export const DM_MAX_TYPE_NAME = 16
/** Interface version sent with every command (§9.2). */
export const DM_VERSION_SENT = [4, 0, 0] as const
/** Initial buffer size (upstream MIN_BUF_SIZE); doubled while the kernel sets DM_BUFFER_FULL. */
export const DM_MIN_BUF_SIZE = 16384

/** Field offsets inside struct dm_ioctl. */
export const DmIoctlOffset = {
  version: 0,
  dataSize: 12,
  dataStart: 16,
  targetCount: 20,
  openCount: 24,
  flags: 28,
  eventNr: 32,
  padding: 36,
  dev: 40,
  name: 48,
  uuid: 176,
  data: 305,
} as const

/** DM command numbers (`enum { DM_VERSION_CMD = 0, … }` in dm-ioctl.h). */
export const DmCmd = {
  VERSION: 0,
  REMOVE_ALL: 1,
  LIST_DEVICES: 2,
  DEV_CREATE: 3,
  DEV_REMOVE: 4,
  DEV_RENAME: 5,
  DEV_SUSPEND: 6,
  DEV_STATUS: 7,
  DEV_WAIT: 8,
  TABLE_LOAD: 9,
  TABLE_CLEAR: 10,
  TABLE_DEPS: 11,
  TABLE_STATUS: 12,
  LIST_VERSIONS: 13,
} as const
export type DmCmd = (typeof DmCmd)[keyof typeof DmCmd]

export const DM_CMD_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(DmCmd).map(([k, v]) => [v, `DM_${k}`]),
)

/** Linux `_IOWR(type, nr, size)` = dir(3)<<30 | size<<16 | type<<8 | nr, as an unsigned 32-bit number. */
export function iowr(type: number, nr: number, size: number): number {
  return ((3 << 30) | ((size & 0x3fff) << 16) | ((type & 0xff) << 8) | (nr & 0xff)) >>> 0
}

/** The ioctl magic of device-mapper ('\xfd'). */
export const DM_IOCTL_TYPE = 0xfd

/** Request number for one DM command: `_IOWR(0xFD, cmd, struct dm_ioctl)` = 0xC138FD00 | cmd (§9.4). */
export function dmRequest(cmd: DmCmd): number {
  return iowr(DM_IOCTL_TYPE, cmd, DM_IOCTL_SIZE)
}

export const DM_VERSION = dmRequest(DmCmd.VERSION)
export const DM_LIST_DEVICES = dmRequest(DmCmd.LIST_DEVICES)
export const DM_DEV_CREATE = dmRequest(DmCmd.DEV_CREATE)
export const DM_DEV_REMOVE = dmRequest(DmCmd.DEV_REMOVE)
export const DM_DEV_SUSPEND = dmRequest(DmCmd.DEV_SUSPEND)
export const DM_DEV_STATUS = dmRequest(DmCmd.DEV_STATUS)
export const DM_TABLE_LOAD = dmRequest(DmCmd.TABLE_LOAD)
export const DM_TABLE_STATUS = dmRequest(DmCmd.TABLE_STATUS)

/** dm_ioctl.flags bits (§9.5 plus the rest of dm-ioctl.h that we decode). */
export const DmFlag = {
  READONLY: 1 << 0,
  SUSPEND: 1 << 1,
  EXISTS: 1 << 2,
  PERSISTENT_DEV: 1 << 3,
  STATUS_TABLE: 1 << 4,
  ACTIVE_PRESENT: 1 << 5,
  INACTIVE_PRESENT: 1 << 6,
  BUFFER_FULL: 1 << 8,
  SKIP_BDGET: 1 << 9,
  SKIP_LOCKFS: 1 << 10,
  NOFLUSH: 1 << 11,
  QUERY_INACTIVE_TABLE: 1 << 12,
  UEVENT_GENERATED: 1 << 13,
  UUID: 1 << 14,
  SECURE_DATA: 1 << 15,
  DATA_OUT: 1 << 16,
  DEFERRED_REMOVE: 1 << 17,
  INTERNAL_SUSPEND: 1 << 18,
} as const

/** Flags each command may carry (upstream masks the requested flags with these, §9.5). */
export const DM_ALLOWED_FLAGS: Readonly<Partial<Record<DmCmd, number>>> = {
  [DmCmd.VERSION]: 0,
  [DmCmd.LIST_DEVICES]: 0,
  [DmCmd.DEV_CREATE]: DmFlag.READONLY | DmFlag.PERSISTENT_DEV,
  [DmCmd.DEV_REMOVE]: DmFlag.DEFERRED_REMOVE,
  [DmCmd.DEV_SUSPEND]: DmFlag.SUSPEND | DmFlag.NOFLUSH | DmFlag.SKIP_LOCKFS,
  [DmCmd.DEV_STATUS]: 0,
  [DmCmd.TABLE_LOAD]: DmFlag.READONLY | DmFlag.SECURE_DATA,
  [DmCmd.TABLE_STATUS]: DmFlag.STATUS_TABLE | DmFlag.QUERY_INACTIVE_TABLE,
}

/** Decoded / to-be-encoded header of struct dm_ioctl. */
export interface DmIoctlHeader {
  version: readonly [number, number, number]
  dataSize: number
  dataStart: number
  targetCount: number
  openCount: number
  flags: number
  eventNr: number
  /** Device number in the kernel's "huge" encoding (out). */
  dev: bigint
  name: string
  uuid: string
}

export function defaultHeader(name = ''): DmIoctlHeader {
  return {
    version: DM_VERSION_SENT,
    dataSize: DM_IOCTL_SIZE,
    dataStart: DM_IOCTL_SIZE,
    targetCount: 0,
    openCount: 0,
    flags: 0,
    eventNr: 0,
    dev: 0n,
    name,
    uuid: '',
  }
}

function writeCString(buf: Buffer, offset: number, max: number, value: string, field: string): void {
  const bytes = Buffer.from(value, 'latin1')
  if (Buffer.byteLength(value, 'utf8') !== bytes.length) throw new RangeError(`dm_ioctl.${field} must be ASCII: ${JSON.stringify(value)}`)
  if (bytes.includes(0)) throw new RangeError(`dm_ioctl.${field} contains NUL`)
  if (bytes.length >= max) throw new RangeError(`dm_ioctl.${field} is ${bytes.length} bytes, at most ${max - 1} fit`)
  buf.fill(0, offset, offset + max)
  bytes.copy(buf, offset)
}

function readCString(buf: Buffer, offset: number, max: number): string {
  const end = buf.indexOf(0, offset)
  const stop = end < 0 || end > offset + max ? offset + max : end
  return buf.toString('latin1', offset, stop)
}

/** Write the 312-byte header at the start of `buf` (which must be at least 312 bytes). */
export function encodeDmIoctlHeader(h: DmIoctlHeader, buf: Buffer = Buffer.alloc(DM_IOCTL_SIZE)): Buffer {
  if (buf.length < DM_IOCTL_SIZE) throw new RangeError(`dm_ioctl buffer is ${buf.length} bytes, need ${DM_IOCTL_SIZE}`)
  buf.fill(0, 0, DM_IOCTL_SIZE)
  buf.writeUInt32LE(h.version[0], DmIoctlOffset.version)
  buf.writeUInt32LE(h.version[1], DmIoctlOffset.version + 4)
  buf.writeUInt32LE(h.version[2], DmIoctlOffset.version + 8)
  buf.writeUInt32LE(h.dataSize >>> 0, DmIoctlOffset.dataSize)
  buf.writeUInt32LE(h.dataStart >>> 0, DmIoctlOffset.dataStart)
  buf.writeUInt32LE(h.targetCount >>> 0, DmIoctlOffset.targetCount)
  buf.writeInt32LE(h.openCount | 0, DmIoctlOffset.openCount)
  buf.writeUInt32LE(h.flags >>> 0, DmIoctlOffset.flags)
  buf.writeUInt32LE(h.eventNr >>> 0, DmIoctlOffset.eventNr)
  buf.writeUInt32LE(0, DmIoctlOffset.padding)
  buf.writeBigUInt64LE(BigInt.asUintN(64, h.dev), DmIoctlOffset.dev)
  writeCString(buf, DmIoctlOffset.name, DM_NAME_LEN, h.name, 'name')
  writeCString(buf, DmIoctlOffset.uuid, DM_UUID_LEN, h.uuid, 'uuid')
  return buf
}

export function decodeDmIoctlHeader(buf: Buffer): DmIoctlHeader {
  if (buf.length < DM_IOCTL_SIZE) throw new RangeError(`dm_ioctl buffer is ${buf.length} bytes, need ${DM_IOCTL_SIZE}`)
  return {
    version: [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)],
    dataSize: buf.readUInt32LE(DmIoctlOffset.dataSize),
    dataStart: buf.readUInt32LE(DmIoctlOffset.dataStart),
    targetCount: buf.readUInt32LE(DmIoctlOffset.targetCount),
    openCount: buf.readInt32LE(DmIoctlOffset.openCount),
    flags: buf.readUInt32LE(DmIoctlOffset.flags),
    eventNr: buf.readUInt32LE(DmIoctlOffset.eventNr),
    dev: buf.readBigUInt64LE(DmIoctlOffset.dev),
    name: readCString(buf, DmIoctlOffset.name, DM_NAME_LEN),
    uuid: readCString(buf, DmIoctlOffset.uuid, DM_UUID_LEN),
  }
}

/** One table line: `<sector_start> <length> <target_type> <params>`. */
export interface DmTarget {
  sectorStart: bigint
  length: bigint
  targetType: string
  params: string
}

export function roundUp8(n: number): number {
  return (n + 7) & ~7
}

/**
 * Encode targets as a TABLE_LOAD payload (§9.3): per target a 40-byte dm_target_spec, the params,
 * a NUL, zero padding so params+NUL is a multiple of 8; `next` is relative to the current spec.
 */
export function encodeTargetSpecs(targets: readonly DmTarget[]): Buffer {
  const parts: Buffer[] = []
  for (const t of targets) {
    const params = Buffer.from(t.params, 'latin1')
    if (params.includes(0)) throw new RangeError('target params contain NUL')
    const paramsLen = roundUp8(params.length + 1)
    const spec = Buffer.alloc(DM_TARGET_SPEC_SIZE + paramsLen)
    spec.writeBigUInt64LE(t.sectorStart, 0)
    spec.writeBigUInt64LE(t.length, 8)
    spec.writeInt32LE(0, 16)
    spec.writeUInt32LE(DM_TARGET_SPEC_SIZE + paramsLen, 20)
    writeTargetType(spec, t.targetType)
    params.copy(spec, DM_TARGET_SPEC_SIZE)
    parts.push(spec)
  }
  return Buffer.concat(parts)
}

function writeTargetType(spec: Buffer, type: string): void {
  const b = Buffer.from(type, 'latin1')
  if (b.length === 0 || b.length >= DM_MAX_TYPE_NAME) throw new RangeError(`target type ${JSON.stringify(type)} must be 1..15 bytes`)
  b.copy(spec, 24)
}

/** How `next` is interpreted: relative to the current spec (TABLE_LOAD in) or to the first spec (TABLE_STATUS out). */
export type SpecNextMode = 'relative' | 'from-first'

/** Decode `count` dm_target_spec records starting at `offset` in `buf`; `status` is the s32 status field. */
export function decodeTargetSpecs(buf: Buffer, offset: number, count: number, mode: SpecNextMode): (DmTarget & { status: number })[] {
  const out: (DmTarget & { status: number })[] = []
  let pos = offset
  for (let i = 0; i < count; i++) {
    if (pos + DM_TARGET_SPEC_SIZE > buf.length) throw new RangeError(`dm_target_spec ${i} at ${pos} overruns a ${buf.length}-byte buffer`)
    const next = buf.readUInt32LE(pos + 20)
    out.push({
      sectorStart: buf.readBigUInt64LE(pos),
      length: buf.readBigUInt64LE(pos + 8),
      status: buf.readInt32LE(pos + 16),
      targetType: readCString(buf, pos + 24, DM_MAX_TYPE_NAME),
      params: readCString(buf, pos + DM_TARGET_SPEC_SIZE, buf.length - pos - DM_TARGET_SPEC_SIZE),
    })
    pos = mode === 'relative' ? pos + next : offset + next
  }
  return out
}

/** A whole ioctl buffer: header + payload at data_start; data_size = max(minSize, needed). */
export function encodeDmIoctl(h: Omit<DmIoctlHeader, 'dataSize' | 'dataStart'>, payload: Buffer = Buffer.alloc(0), minSize = DM_MIN_BUF_SIZE): Buffer {
  const size = Math.max(minSize, DM_IOCTL_SIZE + payload.length)
  const buf = Buffer.alloc(size)
  encodeDmIoctlHeader({ ...h, dataSize: size, dataStart: DM_IOCTL_SIZE }, buf)
  payload.copy(buf, DM_IOCTL_SIZE)
  return buf
}

/** One record of DM_LIST_DEVICES output (struct dm_name_list: u64 dev, u32 next, char name[]). */
export interface DmNameListEntry {
  name: string
  dev: bigint
}

export function decodeNameList(buf: Buffer, offset: number): DmNameListEntry[] {
  const out: DmNameListEntry[] = []
  let pos = offset
  if (pos + 12 > buf.length) return out
  // An empty list is a single record with dev 0 and an empty name.
  if (buf.readBigUInt64LE(pos) === 0n && buf[pos + 12] === 0) return out
  for (;;) {
    const dev = buf.readBigUInt64LE(pos)
    const next = buf.readUInt32LE(pos + 8)
    out.push({ dev, name: readCString(buf, pos + 12, DM_NAME_LEN) })
    if (next === 0) return out
    pos += next
    if (pos + 12 > buf.length) throw new RangeError(`dm_name_list record at ${pos} overruns a ${buf.length}-byte buffer`)
  }
}

export function encodeNameList(entries: readonly DmNameListEntry[]): Buffer {
  if (entries.length === 0) return Buffer.alloc(16)
  const parts = entries.map((e, i) => {
    const name = Buffer.from(e.name, 'latin1')
    const len = roundUp8(12 + name.length + 1)
    const rec = Buffer.alloc(len)
    rec.writeBigUInt64LE(e.dev, 0)
    rec.writeUInt32LE(i === entries.length - 1 ? 0 : len, 8)
    name.copy(rec, 12)
    return rec
  })
  return Buffer.concat(parts)
}

/** Major/minor from the kernel's dev field: truncated to u32, "huge" encoding (§9.8). */
export function decodeDmDev(dev: bigint): { major: number; minor: number } {
  const v = Number(BigInt.asUintN(32, dev))
  return { major: (v & 0xfff00) >>> 8, minor: ((v & 0xff) | ((v >>> 12) & 0xfff00)) >>> 0 }
}

/** The kernel's huge_encode_dev for a (major, minor) pair (inverse of decodeDmDev). */
export function encodeDmDev(major: number, minor: number): bigint {
  return BigInt(((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0)
}

/** glibc makedev(): the 64-bit dev_t passed to mknod(2). */
export function makedev(major: number, minor: number): bigint {
  const maj = BigInt(major >>> 0)
  const min = BigInt(minor >>> 0)
  return ((maj & 0xfffff000n) << 32n) | ((maj & 0xfffn) << 8n) | ((min & 0xffffff00n) << 12n) | (min & 0xffn)
}
