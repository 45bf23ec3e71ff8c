// Reads and checks the head of a GPT disk (protective MBR, primary header, entry array).
// Every defect is an InvalidInputError naming the field, so corrupt images never crash callers.
import { crc32 } from 'node:zlib'
import { InvalidInputError } from '../../impl/types/errors.ts'
import { guidFromBytes } from './guid.ts'
import { SECTOR_SIZE } from './layout.ts'

export interface GptEntry {
  number: number
  typeGuid: string
  uniqueGuid: string
  firstLba: number
  lastLba: number
  attributes: bigint
  name: string
}

export interface GptHead {
  mbr: { type: number; startLba: number; sizeLba: number }
  header: {
    revision: number
    headerSize: number
    headerCrc32: number
    myLba: number
    alternateLba: number
    firstUsableLba: number
    lastUsableLba: number
    diskGuid: string
    partitionEntryLba: number
    numberOfEntries: number
    sizeOfEntry: number
    entriesCrc32: number
  }
  /** Used entries (non-zero type GUID), in table order. */
  partitions: GptEntry[]
}

function fail(field: string, problem: string): never {
  throw new InvalidInputError(`GPT ${field}`, problem, { field })
}

function u64(b: Buffer, off: number, field: string): number {
  const v = b.readBigUInt64LE(off)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(field, `${v} is too large`)
  return Number(v)
}

export function parseGptHead(bytes: Uint8Array): GptHead {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.length < 2 * SECTOR_SIZE) fail('image', `only ${b.length} bytes; need at least MBR and header sectors`)
  if (b[510] !== 0x55 || b[511] !== 0xaa) fail('MBR signature', `expected 55 aa at byte 510, found ${b.subarray(510, 512).toString('hex')}`)
  const type = b[446 + 4]!
  if (type !== 0xee) fail('protective MBR partition type', `expected 0xee, found 0x${type.toString(16)}`)
  const mbr = { type, startLba: b.readUInt32LE(446 + 8), sizeLba: b.readUInt32LE(446 + 12) }

  const h = b.subarray(SECTOR_SIZE, 2 * SECTOR_SIZE)
  if (h.subarray(0, 8).toString('latin1') !== 'EFI PART') fail('header signature', `expected "EFI PART", found ${h.subarray(0, 8).toString('hex')}`)
  const revision = h.readUInt32LE(8)
  if (revision !== 0x00010000) fail('header revision', `expected 0x00010000, found 0x${revision.toString(16)}`)
  const headerSize = h.readUInt32LE(12)
  if (headerSize < 92 || headerSize > SECTOR_SIZE) fail('header size', `${headerSize} is outside 92..512`)
  const headerCrc32 = h.readUInt32LE(16)
  const forCrc = Buffer.from(h.subarray(0, headerSize))
  forCrc.writeUInt32LE(0, 16)
  const computed = crc32(forCrc)
  if (computed !== headerCrc32) fail('header CRC32', `stored 0x${headerCrc32.toString(16)}, computed 0x${computed.toString(16)}`)
  const myLba = u64(h, 24, 'header MyLBA')
  if (myLba !== 1) fail('header MyLBA', `${myLba} is not 1 (primary header)`)
  const alternateLba = u64(h, 32, 'header AlternateLBA')
  const firstUsableLba = u64(h, 40, 'header FirstUsableLBA')
  const lastUsableLba = u64(h, 48, 'header LastUsableLBA')
  if (firstUsableLba > lastUsableLba + 1) fail('header FirstUsableLBA', `${firstUsableLba} is beyond LastUsableLBA ${lastUsableLba}`)
  const diskGuid = guidFromBytes(h.subarray(56, 72))
  const partitionEntryLba = u64(h, 72, 'header PartitionEntryLBA')
  if (partitionEntryLba < 2) fail('header PartitionEntryLBA', `${partitionEntryLba} overlaps the MBR or header`)
  const numberOfEntries = h.readUInt32LE(80)
  const sizeOfEntry = h.readUInt32LE(84)
  if (sizeOfEntry < 128 || (sizeOfEntry & (sizeOfEntry - 1)) !== 0) fail('header SizeOfPartitionEntry', `${sizeOfEntry} is not 128 × 2^n`)
  if (numberOfEntries > 1024) fail('header NumberOfPartitionEntries', `${numberOfEntries} is implausibly large`)
  const entriesCrc32 = h.readUInt32LE(88)
  const arrayStart = partitionEntryLba * SECTOR_SIZE
  const arrayBytes = numberOfEntries * sizeOfEntry
  if (arrayStart + arrayBytes > b.length) fail('partition entry array', `bytes ${arrayStart}..${arrayStart + arrayBytes} lie past the ${b.length}-byte image`)
  const array = b.subarray(arrayStart, arrayStart + arrayBytes)
  const arrayCrc = crc32(array)
  if (arrayCrc !== entriesCrc32) fail('header PartitionEntryArrayCRC32', `stored 0x${entriesCrc32.toString(16)}, computed 0x${arrayCrc.toString(16)}`)
  if (firstUsableLba < partitionEntryLba + Math.ceil(arrayBytes / SECTOR_SIZE)) fail('header FirstUsableLBA', `${firstUsableLba} overlaps the partition entry array`)

  const partitions: GptEntry[] = []
  for (let k = 0; k < numberOfEntries; k++) {
    const e = array.subarray(k * sizeOfEntry, k * sizeOfEntry + 128)
    if (e.subarray(0, 16).every((x) => x === 0)) continue
    const field = `partition entry ${k + 1}`
    const firstLba = u64(e, 32, `${field} StartingLBA`)
    const lastLba = u64(e, 40, `${field} EndingLBA`)
    if (lastLba < firstLba) fail(`${field} EndingLBA`, `${lastLba} is before StartingLBA ${firstLba}`)
    if (firstLba < firstUsableLba || lastLba > lastUsableLba) fail(`${field} LBAs`, `${firstLba}..${lastLba} outside usable ${firstUsableLba}..${lastUsableLba}`)
    const nameRaw = e.subarray(56, 128)
    let end = 0
    while (end < 72 && (nameRaw[end] !== 0 || nameRaw[end + 1] !== 0)) end += 2
    partitions.push({
      number: k + 1,
      typeGuid: guidFromBytes(e.subarray(0, 16)),
      uniqueGuid: guidFromBytes(e.subarray(16, 32)),
      firstLba, lastLba,
      attributes: e.readBigUInt64LE(48),
      name: nameRaw.subarray(0, end).toString('utf16le'),
    })
  }
  const sorted = [...partitions].sort((x, y) => x.firstLba - y.firstLba)
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.firstLba <= sorted[i - 1]!.lastLba) fail(`partition entry ${sorted[i]!.number} LBAs`, `overlap partition ${sorted[i - 1]!.number}`)
  }
  return {
    mbr,
    header: { revision, headerSize, headerCrc32, myLba, alternateLba, firstUsableLba, lastUsableLba, diskGuid, partitionEntryLba, numberOfEntries, sizeOfEntry, entriesCrc32 },
    partitions,
  }
}
