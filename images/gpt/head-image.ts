// The 1 MiB head of the GPT disk (§4): protective MBR, primary GPT header and entry array.
// Rendered directly in memory; the bytes equal what upstream cuts from its full temporary image.
import { crc32 } from 'node:zlib'
import { InvalidInputError } from '../../impl/types/errors.ts'
import { guidToBytes, randomGuid, LINUX_FS_TYPE_GUID } from './guid.ts'
import {
  BACKUP_GPT_SECTORS, ENTRY_SIZE, FIRST_USABLE_LBA, HEADER_SIZE, HEAD_BYTES, MAX_PARTITIONS, PARTITION_NAME_MAX, SECTOR_SIZE,
  type GptLayout,
} from './layout.ts'

export interface HeadGuids {
  disk: string
  /** One per partition, in partition order. */
  partitions: string[]
}

export function randomHeadGuids(partitions: number): HeadGuids {
  return { disk: randomGuid(), partitions: Array.from({ length: partitions }, randomGuid) }
}

export const ENTRIES_OFFSET = 2 * SECTOR_SIZE
export const ENTRIES_BYTES = MAX_PARTITIONS * ENTRY_SIZE

export interface HeadImageOptions {
  /**
   * Opt-in: protective MBR sized to the disk the guest sees. Default: upstream's size, which
   * describes the larger conventional image (byte-compatible, §15.6).
   */
  rightSizedMbr?: boolean
}

function renderEntries(layout: GptLayout, guids: HeadGuids): Buffer {
  const entries = Buffer.alloc(ENTRIES_BYTES)
  const typeGuid = guidToBytes(LINUX_FS_TYPE_GUID)
  for (const p of layout.partitions) {
    const e = entries.subarray(p.index * ENTRY_SIZE, (p.index + 1) * ENTRY_SIZE)
    typeGuid.copy(e, 0)
    guidToBytes(guids.partitions[p.index]!).copy(e, 16)
    e.writeBigUInt64LE(BigInt(p.startLba), 32)
    e.writeBigUInt64LE(BigInt(p.endLba), 40)
    e.write(p.name.slice(0, PARTITION_NAME_MAX), 56, 72, 'utf16le')
  }
  return entries
}

function renderHeader(layout: GptLayout, guids: HeadGuids, entries: Buffer, myLba: number, alternateLba: number, entriesLba: number): Buffer {
  const last = layout.partitions[layout.partitions.length - 1]!
  const h = Buffer.alloc(HEADER_SIZE)
  h.write('EFI PART', 0, 'latin1')
  h.writeUInt32LE(0x00010000, 8)
  h.writeUInt32LE(HEADER_SIZE, 12)
  h.writeBigUInt64LE(BigInt(myLba), 24)
  h.writeBigUInt64LE(BigInt(alternateLba), 32)
  h.writeBigUInt64LE(BigInt(FIRST_USABLE_LBA), 40)
  h.writeBigUInt64LE(BigInt(last.endLba), 48)
  guidToBytes(guids.disk).copy(h, 56)
  h.writeBigUInt64LE(BigInt(entriesLba), 72)
  h.writeUInt32LE(MAX_PARTITIONS, 80)
  h.writeUInt32LE(ENTRY_SIZE, 84)
  h.writeUInt32LE(crc32(entries), 88)
  h.writeUInt32LE(crc32(h), 16) // CRC field is still zero here, as the checksum requires
  return h
}

function checkGuids(layout: GptLayout, guids: HeadGuids): void {
  if (guids.partitions.length !== layout.partitions.length) {
    throw new InvalidInputError('GPT partition GUIDs', `${guids.partitions.length} given for ${layout.partitions.length} partitions`)
  }
}

/**
 * The opt-in backup GPT (layout built with `backupGpt`): entry array then backup header, 33
 * sectors placed right after the last partition.
 */
export function renderBackupGpt(layout: GptLayout, guids: HeadGuids): Buffer {
  checkGuids(layout, guids)
  if (layout.backupEntriesLba === null) throw new InvalidInputError('GPT layout', 'has no backup GPT (build it with backupGpt: true)')
  const entries = renderEntries(layout, guids)
  const backupHeaderLba = layout.virtualTotalSectors - 1
  const out = Buffer.alloc(BACKUP_GPT_SECTORS * SECTOR_SIZE)
  entries.copy(out, 0)
  renderHeader(layout, guids, entries, backupHeaderLba, 1, layout.backupEntriesLba).copy(out, ENTRIES_BYTES)
  return out
}

export function renderHeadImage(layout: GptLayout, guids: HeadGuids = randomHeadGuids(layout.partitions.length), opts: HeadImageOptions = {}): Buffer {
  checkGuids(layout, guids)
  const head = Buffer.alloc(HEAD_BYTES)
  // Protective MBR. Its size describes the conventional full image (with backup GPT), which is
  // larger than the disk the guest sees: kept for byte compatibility with upstream (§15.6).
  const rec = 446
  head.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], rec)
  head.writeUInt32LE(1, rec + 8)
  head.writeUInt32LE(Math.min((opts.rightSizedMbr ? layout.virtualTotalSectors : layout.fullTotalSectors) - 1, 0xffffffff), rec + 12)
  head[510] = 0x55
  head[511] = 0xaa

  const entries = renderEntries(layout, guids)
  entries.copy(head, ENTRIES_OFFSET)
  const last = layout.partitions[layout.partitions.length - 1]!
  // Upstream has no backup GPT: AlternateLBA points one past the disk. With the opt-in backup GPT
  // it names the backup header, the disk's last sector.
  const alternate = layout.backupEntriesLba === null ? last.endLba + 1 : layout.virtualTotalSectors - 1
  renderHeader(layout, guids, entries, 1, alternate, 2).copy(head, SECTOR_SIZE)
  return head
}
