// `veritysetup format` in TypeScript: hashes a data file and writes the hash tree (optionally with a
// v1 superblock) into a separate hash file or into the data file at an offset. The output bytes are
// identical to veritysetup's for the same parameters (same UUID and salt).
import { open, stat, rm } from 'node:fs/promises'
import { constants } from 'node:fs'
import { randomBytes, randomUUID } from 'node:crypto'
import { InvalidInputError, KatarefError, Code, errorMessage } from '../../impl/types/errors.ts'
import {
  VERITY_ALGORITHMS, VERITY_DEFAULT_SALT_SIZE, checkSalt, verityTreeParams,
  type VerityAlgorithm, type VerityHashType,
} from './params.ts'
import { treeGeometry, treeOffset } from './geometry.ts'
import { encodeSuperblock, uuidToBytes } from './superblock.ts'
import { buildTree, buildUpperLevels } from './hash-tree.ts'
import { digestBlocks, defaultWorkerCount } from './block-digests.ts'

export interface VerityFormatOptions {
  dataBlockSize?: number
  hashBlockSize?: number
  algorithm?: VerityAlgorithm
  hashType?: VerityHashType
  /** Bytes, `'random'` (32 random bytes, veritysetup's default) or `'none'`. */
  salt?: Uint8Array | 'random' | 'none'
  /** Write the 512-byte v1 superblock at the hash offset (default true). */
  superblock?: boolean
  uuid?: string
  /** Data blocks to protect; default: whole blocks in the data file (a partial tail is not covered, as in veritysetup). */
  dataBlocks?: number
  /** Hash file; default: the data file itself (hash area appended). Created when missing. */
  hashPath?: string
  /** Byte offset of the hash area (superblock, then tree) in the hash file. Default: end of data when
   * hashing into the data file, else 0. */
  hashOffset?: number
  /** Worker threads for hashing data blocks. */
  workers?: number
}

export interface VerityFormatResult {
  rootHash: string
  /** Hex salt, `''` when none. */
  salt: string
  algorithm: VerityAlgorithm
  hashType: VerityHashType
  dataBlockSize: number
  hashBlockSize: number
  dataBlocks: number
  hashPath: string
  /** Where the hash area begins (the superblock, when there is one): the agent's `hashoffset`. */
  hashOffset: number
  /** Byte offset of the first tree block. */
  treeOffset: number
  /** First tree block in hash-block units: the dm-verity table's hash_start_block. */
  hashStartBlock: number
  treeBlocks: number
  levels: number
  /** One past the last byte written to the hash file. */
  hashEnd: number
  uuid: string | null
  superblock: Buffer | null
}

function resolveSalt(salt: VerityFormatOptions['salt']): Buffer {
  if (salt === undefined || salt === 'random') return randomBytes(VERITY_DEFAULT_SALT_SIZE)
  if (salt === 'none') return Buffer.alloc(0)
  if (!(salt instanceof Uint8Array)) throw new InvalidInputError('dm-verity salt', 'must be bytes, "random" or "none"')
  checkSalt('dm-verity salt', salt)
  return Buffer.from(salt)
}

function checkOffset(input: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidInputError(input, `${value} is not a non-negative integer`)
}

export async function formatVerity(dataPath: string, opts: VerityFormatOptions = {}): Promise<VerityFormatResult> {
  const { dataBlockSize, hashBlockSize, algorithm, hashType } = verityTreeParams(opts)
  const salt = resolveSalt(opts.salt)
  const withSuperblock = opts.superblock ?? true
  const uuid = withSuperblock ? (opts.uuid ?? randomUUID()) : null
  if (uuid !== null) uuidToBytes(uuid)

  let dataSize: number
  try {
    const st = await stat(dataPath)
    if (!st.isFile()) throw new InvalidInputError(`dm-verity data file ${dataPath}`, 'is not a regular file', { path: dataPath })
    dataSize = st.size
  } catch (e) {
    if (e instanceof KatarefError) throw e
    throw new InvalidInputError(`dm-verity data file ${dataPath}`, 'cannot be read', { path: dataPath }, { cause: e })
  }
  const available = Math.floor(dataSize / dataBlockSize)
  const dataBlocks = opts.dataBlocks ?? available
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) {
    throw new InvalidInputError(`dm-verity data file ${dataPath}`, `holds ${dataSize} bytes: no whole ${dataBlockSize}-byte block to protect`, { path: dataPath })
  }
  if (dataBlocks > available) {
    throw new InvalidInputError('dm-verity data blocks', `${dataBlocks} blocks of ${dataBlockSize} bytes exceed the ${dataSize}-byte data file ${dataPath}`)
  }
  const hashPath = opts.hashPath ?? dataPath
  const inPlace = hashPath === dataPath
  if (inPlace && opts.hashOffset === undefined && dataSize > dataBlocks * dataBlockSize) {
    // The default offset would put the superblock over the unprotected tail bytes of the file.
    throw new InvalidInputError(`dm-verity data file ${dataPath}`, `has ${dataSize - dataBlocks * dataBlockSize} bytes after its last whole block: pad it to the block size or pass hashOffset`, { path: dataPath })
  }
  const hashOffset = opts.hashOffset ?? (inPlace ? dataBlocks * dataBlockSize : 0)
  checkOffset('dm-verity hash offset', hashOffset)
  if (hashOffset % 512 !== 0) throw new InvalidInputError('dm-verity hash offset', `${hashOffset} is not a multiple of 512`)
  if (!withSuperblock && hashOffset % hashBlockSize !== 0) {
    throw new InvalidInputError('dm-verity hash offset', `${hashOffset} is not a multiple of the hash block size ${hashBlockSize} (required without a superblock)`)
  }
  if (inPlace && hashOffset < dataBlocks * dataBlockSize) {
    throw new InvalidInputError('dm-verity hash offset', `${hashOffset} overlaps the ${dataBlocks * dataBlockSize} protected data bytes of ${dataPath}`)
  }

  const g = treeGeometry(dataBlocks, hashBlockSize, algorithm, hashType)
  const digestSize = VERITY_ALGORITHMS[algorithm]
  const job = { path: dataPath, offset: 0, blockSize: dataBlockSize, algorithm, hashType, salt, digestSize }
  const workers = opts.workers ?? defaultWorkerCount()
  const h = { algorithm, hashType, salt, hashBlockSize }
  let tree: Buffer, rootHash: Buffer
  if (g.levels === 0) {
    ({ tree, rootHash } = buildTree(g, h, await digestBlocks(job, 0, dataBlocks, workers), dataBlocks))
  } else {
    // Level-0 digests are written by the hashing threads straight into their hash-block slots.
    const shared = new SharedArrayBuffer(g.treeBlocks * hashBlockSize)
    await digestBlocks(job, 0, dataBlocks, workers, { into: shared, byteOffset: g.levelStart[0]! * hashBlockSize, hashBlockSize, hashPerBlock: g.hashPerBlock, stride: g.digestStride })
    tree = Buffer.from(shared)
    rootHash = buildUpperLevels(g, h, tree)
  }
  const tOffset = treeOffset(hashOffset, hashBlockSize, withSuperblock)
  const superblock = withSuperblock ? encodeSuperblock({ hashType, uuid: uuid!, algorithm, dataBlockSize, hashBlockSize, dataBlocks, salt }) : null

  // Never truncate: the hash file may be the data file itself. A file we create is removed again
  // if writing fails, so a failed format leaves nothing behind.
  const existed = await stat(hashPath).then(() => true, () => false)
  let fh
  try {
    fh = await open(hashPath, constants.O_RDWR | constants.O_CREAT, 0o644)
  } catch (e) {
    throw new InvalidInputError(`dm-verity hash file ${hashPath}`, 'cannot be opened for writing', { path: hashPath }, { cause: e })
  }
  try {
    if (superblock) await fh.write(superblock, 0, superblock.length, hashOffset)
    if (tree.length > 0) await fh.write(tree, 0, tree.length, tOffset)
    // veritysetup sizes the hash device to the end of the tree area even when the tree is empty
    // (one data block: the superblock's block is still reserved).
    const end = tOffset + tree.length
    if ((await fh.stat()).size < end) await fh.truncate(end)
  } catch (e) {
    if (!existed) await rm(hashPath, { force: true })
    throw new KatarefError(`writing dm-verity hash area to ${hashPath}: ${errorMessage(e)}`, Code.INTERNAL, { path: hashPath }, { cause: e })
  } finally {
    await fh.close()
  }
  return {
    rootHash: rootHash.toString('hex'),
    salt: salt.toString('hex'),
    algorithm, hashType, dataBlockSize, hashBlockSize, dataBlocks, hashPath, hashOffset,
    treeOffset: tOffset,
    hashStartBlock: tOffset / hashBlockSize,
    treeBlocks: g.treeBlocks,
    levels: g.levels,
    hashEnd: tOffset + tree.length,
    uuid,
    superblock,
  }
}
