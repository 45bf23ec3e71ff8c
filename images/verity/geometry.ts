// Layout of a dm-verity hash tree, computed the way veritysetup (lib/verity/verity_hash.c) does it,
// so that our hash device is byte-identical to `veritysetup format` for the same parameters.
import { InvalidInputError } from '../../impl/types/errors.ts'
import { VERITY_ALGORITHMS, VERITY_SUPERBLOCK_SIZE, type VerityAlgorithm, type VerityHashType } from './params.ts'

export interface VerityTreeGeometry {
  digestSize: number
  /** Bytes between consecutive digests inside a hash block (v1 pads each digest to a power of two). */
  digestStride: number
  hashPerBlock: number
  /** Number of hash levels; 0 when there is a single data block (the root hashes it directly). */
  levels: number
  /** Per level (index 0 = hashes of data blocks): its first block, relative to the tree start. */
  levelStart: number[]
  /** Per level: its number of hash blocks. */
  levelBlocks: number[]
  /** Total hash blocks in the tree. */
  treeBlocks: number
}

function floorLog2(n: number): number {
  return Math.floor(Math.log2(n))
}

export function treeGeometry(dataBlocks: number, hashBlockSize: number, algorithm: VerityAlgorithm, hashType: VerityHashType): VerityTreeGeometry {
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) throw new InvalidInputError('dm-verity data blocks', `${dataBlocks} is not a positive integer`)
  const digestSize = VERITY_ALGORITHMS[algorithm]
  const bits = floorLog2(hashBlockSize / digestSize)
  const hashPerBlock = 2 ** bits
  // Version 0 packs digests; version 1 gives each one a power-of-two slot.
  const digestStride = hashType === 0 ? digestSize : 2 ** Math.ceil(Math.log2(digestSize))
  let levels = 0
  // Division by a power of two is exact in binary floating point, so Number maths is safe to 2^53.
  while (bits * levels < 64 && Math.floor((dataBlocks - 1) / 2 ** (bits * levels)) > 0) levels++
  const levelStart = new Array<number>(levels)
  const levelBlocks = new Array<number>(levels)
  // veritysetup places the top level first and level 0 (data hashes) last.
  let position = 0
  for (let i = levels - 1; i >= 0; i--) {
    levelStart[i] = position
    levelBlocks[i] = Math.ceil(dataBlocks / 2 ** ((i + 1) * bits))
    position += levelBlocks[i]!
  }
  return { digestSize, digestStride, hashPerBlock, levels, levelStart, levelBlocks, treeBlocks: position }
}

/**
 * Byte offset of the first tree block on the hash device. With a superblock the tree starts at the
 * first hash block after the 512-byte superblock, which is what the agent's hash_start_block encodes.
 */
export function treeOffset(hashAreaOffset: number, hashBlockSize: number, superblock: boolean): number {
  const blocks = superblock ? Math.ceil((hashAreaOffset + VERITY_SUPERBLOCK_SIZE) / hashBlockSize) : Math.floor(hashAreaOffset / hashBlockSize)
  return blocks * hashBlockSize
}
