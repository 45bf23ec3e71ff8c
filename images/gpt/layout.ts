// GPT geometry for a disk whose partitions are EROFS layer files used in place
// (host-erofs-gpt-verity.md §2–§3): each layer starts on a 1 MiB boundary after a 1 MiB head.
import { basename, dirname } from 'node:path'
import { InvalidInputError } from '../../impl/types/errors.ts'

export const SECTOR_SIZE = 512
export const FIRST_PARTITION_LBA = 2048
export const PARTITION_ALIGNMENT_LBAS = 2048
export const ENTRY_SIZE = 128
export const MAX_PARTITIONS = 128
export const ENTRIES_SECTORS = (MAX_PARTITIONS * ENTRY_SIZE) / SECTOR_SIZE // 32
export const HEADER_SIZE = 92
export const FIRST_USABLE_LBA = 2 + ENTRIES_SECTORS // 34
export const HEAD_SECTORS = FIRST_PARTITION_LBA
export const HEAD_BYTES = HEAD_SECTORS * SECTOR_SIZE
/** Backup entry array + backup header. */
export const BACKUP_GPT_SECTORS = ENTRIES_SECTORS + 1
/** GPT partition names hold at most 36 UTF-16 code units. */
export const PARTITION_NAME_MAX = 36

export interface LayerInput {
  path: string
  sizeBytes: number
}

export interface GptPartition {
  /** 0-based index among kept layers. */
  index: number
  /** 1-based partition number (= index + 1). */
  number: number
  path: string
  sizeBytes: number
  sizeSectors: number
  startLba: number
  endLba: number
  snapshotId: string
  name: string
}

export interface GptLayoutOptions {
  /**
   * Opt-in: end the disk with a valid backup GPT (entry array + header, 33 sectors right after the
   * last partition). Upstream has none, which tools report as a damaged backup header.
   */
  backupGpt?: boolean
}

export interface GptLayout {
  partitions: GptPartition[]
  /** Sectors the guest sees: one past the last partition (upstream), or past the backup GPT. */
  virtualTotalSectors: number
  /** First LBA of the backup entry array when the opt-in backup GPT is on, else null. */
  backupEntriesLba: number | null
  /** Size of the conventional image (with backup structures) the protective MBR describes. */
  fullTotalSectors: number
}

export function alignUp(x: number, a: number): number {
  return x % a === 0 ? x : (Math.floor(x / a) + 1) * a
}

/** containerd keeps a layer at `…/snapshots/<id>/layer.erofs`: the id is the parent directory's name. */
export function snapshotIdOf(path: string): string {
  const parent = dirname(path)
  const id = basename(parent)
  return id === '' || parent === path || id === '/' || id === '.' ? 'unknown' : id
}

export function partitionName(index: number, snapshotId: string): string {
  return `erofs-${index}-s${snapshotId}`.slice(0, PARTITION_NAME_MAX)
}

export function gptLayout(layers: readonly LayerInput[], opts: GptLayoutOptions = {}): GptLayout {
  if (layers.length === 0) throw new InvalidInputError('GPT layers', 'no EROFS layers provided for GPT layout')
  if (layers.length > MAX_PARTITIONS) {
    throw new InvalidInputError('GPT layers', `The layers for GPT: ${layers.length} exceeds maximum ${MAX_PARTITIONS} partitions (ENTRIES_SECTORS is sized for ${MAX_PARTITIONS} entries)`)
  }
  const partitions: GptPartition[] = []
  let start = FIRST_PARTITION_LBA
  layers.forEach((l, i) => {
    if (!Number.isSafeInteger(l.sizeBytes) || l.sizeBytes <= 0) {
      throw new InvalidInputError(`GPT layer ${i} (${l.path})`, `size ${l.sizeBytes} gives no sectors`, { index: i, path: l.path })
    }
    const sizeSectors = Math.ceil(l.sizeBytes / SECTOR_SIZE)
    const endLba = start + sizeSectors - 1
    const snapshotId = snapshotIdOf(l.path)
    partitions.push({ index: i, number: i + 1, path: l.path, sizeBytes: l.sizeBytes, sizeSectors, startLba: start, endLba, snapshotId, name: partitionName(i, snapshotId) })
    start = alignUp(endLba + 1, PARTITION_ALIGNMENT_LBAS)
  })
  const last = partitions[partitions.length - 1]!
  const backupEntries = alignUp(last.endLba + 1, PARTITION_ALIGNMENT_LBAS)
  const fullTotalSectors = backupEntries + ENTRIES_SECTORS + 1
  if (opts.backupGpt) {
    return { partitions, virtualTotalSectors: last.endLba + 1 + BACKUP_GPT_SECTORS, backupEntriesLba: last.endLba + 1, fullTotalSectors }
  }
  return { partitions, virtualTotalSectors: last.endLba + 1, backupEntriesLba: null, fullTotalSectors }
}

/** Zero-filled gaps between the end of the previous extent and each partition (§5). */
export function paddingGaps(layout: GptLayout): { index: number; sectors: number }[] {
  const gaps: { index: number; sectors: number }[] = []
  let prevEnd = HEAD_SECTORS - 1
  for (const p of layout.partitions) {
    const gap = p.startLba - (prevEnd + 1)
    if (gap > 0) gaps.push({ index: p.index, sectors: gap })
    prevEnd = p.endLba
  }
  return gaps
}
