// The 1 MiB head of the GPT disk (§4): protective MBR, primary GPT header and entry array.
// Rendered directly in memory; the bytes equal what upstream cuts from its full temporary image.
import { crc32 } from 'node:zlib'
import { InvalidInputError } from '../../impl/types/errors.ts'
import { guidToBytes, randomGuid, LINUX_FS_TYPE_GUID } from './guid.ts'
import {
  ENTRY_SIZE, FIRST_USABLE_LBA, HEADER_SIZE, HEAD_BYTES, MAX_PARTITIONS, PARTITION_NAME_MAX, SECTOR_SIZE,
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

export function renderHeadImage(layout: GptLayout, guids: HeadGuids = randomHeadGuids(layout.partitions.length)): Buffer {
  if (guids.partitions.length !== layout.partitions.length) {
    throw new InvalidInputError('GPT partition GUIDs', `${guids.partitions.length} given for ${layout.partitions.length} partitions`)
  }
  const head = Buffer.alloc(HEAD_BYTES)
  // Protective MBR. Its size describes the conventional full image (with backup GPT), which is
  // larger than the disk the guest sees: kept for byte compatibility with upstream (§15.6).
  const rec = 446
  head.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], rec)
  head.writeUInt32LE(1, rec + 8)
  head.writeUInt32LE(Math.min(layout.fullTotalSectors - 1, 0xffffffff), rec + 12)
  head[510] = 0x55
  head[511] = 0xaa

  const entries = head.subarray(ENTRIES_OFFSET, ENTRIES_OFFSET + ENTRIES_BYTES)
  const typeGuid = guidToBytes(LINUX_FS_TYPE_GUID)
  for (const p of layout.partitions) {
    const e = entries.subarray(p.index * ENTRY_SIZE, (p.index + 1) * ENTRY_SIZE)
    typeGuid.copy(e, 0)
    guidToBytes(guids.partitions[p.index]!).copy(e, 16)
    e.writeBigUInt64LE(BigInt(p.startLba), 32)
    e.writeBigUInt64LE(BigInt(p.endLba), 40)
    e.write(p.name.slice(0, PARTITION_NAME_MAX), 56, 72, 'utf16le')
  }

  const last = layout.partitions[layout.partitions.length - 1]!
  const h = head.subarray(SECTOR_SIZE, SECTOR_SIZE + HEADER_SIZE)
  h.write('EFI PART', 0, 'latin1')
  h.writeUInt32LE(0x00010000, 8)
  h.writeUInt32LE(HEADER_SIZE, 12)
  h.writeBigUInt64LE(1n, 24)
  // No backup GPT is part of the disk: AlternateLBA points one past it, LastUsable is the last partition end.
  h.writeBigUInt64LE(BigInt(last.endLba + 1), 32)
  h.writeBigUInt64LE(BigInt(FIRST_USABLE_LBA), 40)
  h.writeBigUInt64LE(BigInt(last.endLba), 48)
  guidToBytes(guids.disk).copy(h, 56)
  h.writeBigUInt64LE(2n, 72)
  h.writeUInt32LE(MAX_PARTITIONS, 80)
  h.writeUInt32LE(ENTRY_SIZE, 84)
  h.writeUInt32LE(crc32(entries), 88)
  h.writeUInt32LE(crc32(h), 16) // CRC field is still zero here, as the checksum requires
  return head
}
