// Verifies a data file against a root hash and its stored hash tree, the way the kernel target
// would read it, and reports the first block that does not match.
import { open, stat } from 'node:fs/promises'
import { InvalidInputError } from '../../impl/types/errors.ts'
import {
  VERITY_ALGORITHMS, VERITY_SUPERBLOCK_SIZE, parseSaltHex, verityTreeParams,
  type VerityAlgorithm, type VerityHashType,
} from './params.ts'
import { treeGeometry, treeOffset } from './geometry.ts'
import { parseSuperblock, type VeritySuperblock } from './superblock.ts'
import { saltedDigest } from './hash-tree.ts'
import { digestBlocks, defaultWorkerCount } from './block-digests.ts'

export interface VerityVerifyOptions {
  /** Hash file; default: the data file. */
  hashPath?: string
  /** Offset of the hash area (superblock, if any). */
  hashOffset: number
  rootHash: string
  /** Read parameters from the v1 superblock at hashOffset (default true). Explicit values below must agree with it. */
  superblock?: boolean
  dataBlockSize?: number
  hashBlockSize?: number
  algorithm?: VerityAlgorithm
  hashType?: VerityHashType
  /** Hex salt; `''`/`'-'` = none. Required without a superblock (default none). */
  salt?: string
  dataBlocks?: number
  workers?: number
}

export type VerityBadBlock =
  | { kind: 'data'; block: number; offset: number }
  | { kind: 'hash'; level: number; block: number; offset: number; reason: 'digest mismatch' | 'non-zero padding' }
  | { kind: 'root'; reason: string }

export type VerityVerifyResult = { ok: true; dataBlocks: number } | { ok: false; firstBad: VerityBadBlock }

async function readExactly(path: string, offset: number, length: number, what: string): Promise<Buffer> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new InvalidInputError(`${what} ${path}`, 'cannot be opened', { path }, { cause: e })
  })
  try {
    const buf = Buffer.alloc(length)
    let got = 0
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
      if (bytesRead === 0) throw new InvalidInputError(`${what} ${path}`, `ends at ${offset + got}, before ${offset + length}`, { path })
      got += bytesRead
    }
    return buf
  } finally {
    await fh.close()
  }
}

function agree<T>(name: string, explicit: T | undefined, fromSb: T): T {
  if (explicit !== undefined && explicit !== fromSb) throw new InvalidInputError(`dm-verity ${name}`, `${String(explicit)} disagrees with the superblock's ${String(fromSb)}`)
  return fromSb
}

export async function verifyVerity(dataPath: string, opts: VerityVerifyOptions): Promise<VerityVerifyResult> {
  const hashPath = opts.hashPath ?? dataPath
  const useSb = opts.superblock ?? true
  if (!/^[0-9a-f]+$/i.test(opts.rootHash)) throw new InvalidInputError('dm-verity root hash', `${JSON.stringify(opts.rootHash)} is not hex`)
  let dataBlockSize: number, hashBlockSize: number, algorithm: VerityAlgorithm, hashType: VerityHashType, salt: Buffer, dataBlocks: number
  if (useSb) {
    const sb: VeritySuperblock = parseSuperblock(await readExactly(hashPath, opts.hashOffset, VERITY_SUPERBLOCK_SIZE, 'dm-verity hash file'))
    dataBlockSize = agree('data block size', opts.dataBlockSize, sb.dataBlockSize)
    hashBlockSize = agree('hash block size', opts.hashBlockSize, sb.hashBlockSize)
    algorithm = agree('algorithm', opts.algorithm, sb.algorithm)
    hashType = agree('hash type', opts.hashType, sb.hashType)
    dataBlocks = agree('data blocks', opts.dataBlocks, sb.dataBlocks)
    salt = sb.salt
    if (opts.salt !== undefined) agree('salt', parseSaltHex('dm-verity salt', opts.salt).toString('hex'), salt.toString('hex'))
  } else {
    ({ dataBlockSize, hashBlockSize, algorithm, hashType } = verityTreeParams(opts))
    salt = parseSaltHex('dm-verity salt', opts.salt ?? '')
    const st = await stat(dataPath).catch((e: unknown) => {
      throw new InvalidInputError(`dm-verity data file ${dataPath}`, 'cannot be read', { path: dataPath }, { cause: e })
    })
    dataBlocks = opts.dataBlocks ?? Math.floor(st.size / dataBlockSize)
  }
  const digestSize = VERITY_ALGORITHMS[algorithm]
  if (opts.rootHash.length !== digestSize * 2) throw new InvalidInputError('dm-verity root hash', `${opts.rootHash.length / 2} bytes, ${algorithm} digests are ${digestSize}`)
  const root = Buffer.from(opts.rootHash, 'hex')
  const g = treeGeometry(dataBlocks, hashBlockSize, algorithm, hashType)
  const tOffset = treeOffset(opts.hashOffset, hashBlockSize, useSb)
  const h = { algorithm, hashType, salt, hashBlockSize }
  const tree = g.treeBlocks > 0 ? await readExactly(hashPath, tOffset, g.treeBlocks * hashBlockSize, 'dm-verity hash file') : Buffer.alloc(0)
  const level0 = await digestBlocks({ path: dataPath, offset: 0, blockSize: dataBlockSize, algorithm, hashType, salt, digestSize }, 0, dataBlocks, opts.workers ?? defaultWorkerCount())

  if (g.levels === 0) {
    return root.equals(level0.subarray(0, digestSize)) ? { ok: true, dataBlocks } : { ok: false, firstBad: { kind: 'data', block: 0, offset: 0 } }
  }
  const blockAt = (level: number, j: number) => (g.levelStart[level]! + j) * hashBlockSize
  const top = blockAt(g.levels - 1, 0)
  if (!saltedDigest(h, tree.subarray(top, top + hashBlockSize)).equals(root)) {
    return { ok: false, firstBad: { kind: 'hash', level: g.levels - 1, block: 0, offset: tOffset + top, reason: 'digest mismatch' } }
  }
  // Walk down from the (now trusted) top: each stored block must match its entry one level up,
  // and the bytes after the last digest (and v1 slot padding) must be zero.
  const entry = (level: number, j: number) => {
    const at = blockAt(level, Math.floor(j / g.hashPerBlock)) + (j % g.hashPerBlock) * g.digestStride
    return tree.subarray(at, at + digestSize)
  }
  const paddingOk = (level: number, blk: number, entries: number) => {
    const start = blockAt(level, blk)
    const used = Math.min(g.hashPerBlock, entries - blk * g.hashPerBlock)
    for (let k = 0; k < hashBlockSize; k++) {
      const slot = Math.floor(k / g.digestStride)
      const inDigest = slot < used && k % g.digestStride < digestSize
      if (!inDigest && tree[start + k] !== 0) return false
    }
    return true
  }
  for (let level = g.levels - 1; level >= 0; level--) {
    const entries = level === 0 ? dataBlocks : g.levelBlocks[level - 1]!
    for (let blk = 0; blk < g.levelBlocks[level]!; blk++) {
      if (!paddingOk(level, blk, entries)) return { ok: false, firstBad: { kind: 'hash', level, block: blk, offset: tOffset + blockAt(level, blk), reason: 'non-zero padding' } }
    }
    if (level === 0) break
    for (let j = 0; j < g.levelBlocks[level - 1]!; j++) {
      const at = blockAt(level - 1, j)
      if (!saltedDigest(h, tree.subarray(at, at + hashBlockSize)).equals(entry(level, j))) {
        return { ok: false, firstBad: { kind: 'hash', level: level - 1, block: j, offset: tOffset + at, reason: 'digest mismatch' } }
      }
    }
  }
  for (let j = 0; j < dataBlocks; j++) {
    if (!Buffer.from(level0.buffer, level0.byteOffset + j * digestSize, digestSize).equals(entry(0, j))) {
      return { ok: false, firstBad: { kind: 'data', block: j, offset: j * dataBlockSize } }
    }
  }
  return { ok: true, dataBlocks }
}
