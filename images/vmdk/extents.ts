// The VMDK extent list for a GPT disk (§6.1): head, then per partition an optional padding file and
// the layer itself in ≤ 2 GiB chunks, all referencing files in place.
import { InvalidInputError } from '../../impl/types/errors.ts'
import { BACKUP_GPT_SECTORS, HEAD_SECTORS, paddingGaps, type GptLayout } from '../gpt/layout.ts'

export interface VmdkExtent {
  path: string
  sectors: number
  /** Offset in 512-byte sectors inside `path`. */
  fileOffset: number
}

/** twoGbMaxExtentFlat: no extent may exceed 2 GiB (0x8000_0000 >> 9 sectors). */
export const MAX_EXTENT_SECTORS = 0x8000_0000 / 512

/** Splits `sectors` of one file into ≤ 2 GiB extents with advancing offsets. */
export function chunkExtents(path: string, sectors: number): VmdkExtent[] {
  const out: VmdkExtent[] = []
  for (let off = 0; off < sectors; off += MAX_EXTENT_SECTORS) {
    out.push({ path, sectors: Math.min(MAX_EXTENT_SECTORS, sectors - off), fileOffset: off })
  }
  return out
}

export function gptDiskExtents(layout: GptLayout, headPath: string, padPath: (index: number) => string, backupGptPath?: string): VmdkExtent[] {
  const extents: VmdkExtent[] = [{ path: headPath, sectors: HEAD_SECTORS, fileOffset: 0 }]
  // The same gaps assembleGptDisk makes padding files for.
  const gaps = new Map(paddingGaps(layout).map((g) => [g.index, g.sectors]))
  for (const p of layout.partitions) {
    const gap = gaps.get(p.index)
    if (gap !== undefined) extents.push({ path: padPath(p.index), sectors: gap, fileOffset: 0 })
    extents.push(...chunkExtents(p.path, p.sizeSectors))
  }
  if (layout.backupEntriesLba !== null) {
    if (backupGptPath === undefined) throw new InvalidInputError('GPT VMDK layout', 'the layout has a backup GPT but no file for it was given')
    extents.push({ path: backupGptPath, sectors: BACKUP_GPT_SECTORS, fileOffset: 0 })
  }
  const total = extents.reduce((s, e) => s + e.sectors, 0)
  if (total !== layout.virtualTotalSectors) {
    throw new InvalidInputError('GPT VMDK layout', `GPT VMDK extent size does not match disk layout: Some(${total}) != ${layout.virtualTotalSectors}`)
  }
  return extents
}
