// Builds the hash tree above level-0 digests, laid out exactly as veritysetup writes it.
import { hash as oneShotHash, createHash } from 'node:crypto'
import type { VerityAlgorithm, VerityHashType } from './params.ts'
import type { VerityTreeGeometry } from './geometry.ts'

export interface TreeHashing {
  algorithm: VerityAlgorithm
  hashType: VerityHashType
  salt: Uint8Array
  hashBlockSize: number
}

/** Salted digest of one block: v1 hashes salt||block, v0 block||salt. */
export function saltedDigest(h: TreeHashing, block: Uint8Array): Buffer {
  const first = h.hashType === 1 ? h.salt : block
  const second = h.hashType === 1 ? block : h.salt
  if (typeof oneShotHash === 'function') return oneShotHash(h.algorithm, Buffer.concat([first, second]), 'buffer') as unknown as Buffer
  return createHash(h.algorithm).update(first).update(second).digest()
}

/** Writes `count` digests (packed in `digests`) into consecutive hash blocks starting at `into`. */
function packLevel(g: VerityTreeGeometry, h: TreeHashing, digests: Uint8Array, count: number, tree: Buffer, intoBlock: number): void {
  for (let j = 0; j < count; j++) {
    const block = intoBlock + Math.floor(j / g.hashPerBlock)
    const at = block * h.hashBlockSize + (j % g.hashPerBlock) * g.digestStride
    tree.set(digests.subarray(j * g.digestSize, (j + 1) * g.digestSize), at)
  }
}

export interface BuiltTree {
  /** The tree bytes (treeBlocks × hashBlockSize), to be written at the tree offset. */
  tree: Buffer
  rootHash: Buffer
}

/**
 * `level0` holds the digests of every data block. With one data block there are no levels and the
 * root is that block's digest, as in veritysetup.
 */
export function buildTree(g: VerityTreeGeometry, h: TreeHashing, level0: Uint8Array, dataBlocks: number): BuiltTree {
  const tree = Buffer.alloc(g.treeBlocks * h.hashBlockSize)
  if (g.levels === 0) return { tree, rootHash: Buffer.from(level0.subarray(0, g.digestSize)) }
  packLevel(g, h, level0, dataBlocks, tree, g.levelStart[0]!)
  return { tree, rootHash: buildUpperLevels(g, h, tree) }
}

/**
 * Fills levels 1… of `tree` from its already packed level 0 and returns the root hash
 * (requires at least one level).
 */
export function buildUpperLevels(g: VerityTreeGeometry, h: TreeHashing, tree: Buffer): Buffer {
  for (let i = 1; i < g.levels; i++) {
    const below = g.levelBlocks[i - 1]!
    const digests = Buffer.alloc(below * g.digestSize)
    for (let j = 0; j < below; j++) {
      const at = (g.levelStart[i - 1]! + j) * h.hashBlockSize
      saltedDigest(h, tree.subarray(at, at + h.hashBlockSize)).copy(digests, j * g.digestSize)
    }
    packLevel(g, h, digests, below, tree, g.levelStart[i]!)
  }
  const top = g.levelStart[g.levels - 1]! * h.hashBlockSize
  return saltedDigest(h, tree.subarray(top, top + h.hashBlockSize))
}
