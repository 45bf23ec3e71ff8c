// dm-verity format parameters and their validation, shared by the tree builder, the superblock
// codec and the verifier. Limits follow what veritysetup and the kernel's dm-verity target accept.
import { InvalidInputError } from '../../impl/types/errors.ts'

/** Hash algorithms we build trees with, and their digest sizes in bytes. */
export const VERITY_ALGORITHMS = { sha1: 20, sha256: 32, sha512: 64 } as const
export type VerityAlgorithm = keyof typeof VERITY_ALGORITHMS

/** dm-verity format version: 0 = Chrome OS (salt after data, packed digests), 1 = current. */
export type VerityHashType = 0 | 1

export const VERITY_MIN_BLOCK_SIZE = 512
// The guest kernel maps data blocks into pages, so larger blocks would not be usable there.
export const VERITY_MAX_BLOCK_SIZE = 4096
/** Largest salt the v1 superblock can carry. */
export const VERITY_MAX_SALT_SIZE = 256
/** veritysetup's default random salt length. */
export const VERITY_DEFAULT_SALT_SIZE = 32
export const VERITY_SUPERBLOCK_SIZE = 512

export function isVerityAlgorithm(name: string): name is VerityAlgorithm {
  return Object.hasOwn(VERITY_ALGORITHMS, name)
}

export function checkBlockSize(input: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < VERITY_MIN_BLOCK_SIZE || size > VERITY_MAX_BLOCK_SIZE || (size & (size - 1)) !== 0) {
    throw new InvalidInputError(input, `${size} is not a power of two between ${VERITY_MIN_BLOCK_SIZE} and ${VERITY_MAX_BLOCK_SIZE}`)
  }
}

export function checkAlgorithm(input: string, name: string): VerityAlgorithm {
  if (!isVerityAlgorithm(name)) {
    throw new InvalidInputError(input, `unsupported hash algorithm ${JSON.stringify(name)} (supported: ${Object.keys(VERITY_ALGORITHMS).join(', ')})`)
  }
  return name
}

export function checkHashType(input: string, value: number): VerityHashType {
  if (value !== 0 && value !== 1) throw new InvalidInputError(input, `hash type ${value} is neither 0 nor 1`)
  return value
}

export function checkSalt(input: string, salt: Uint8Array): void {
  if (salt.length > VERITY_MAX_SALT_SIZE) throw new InvalidInputError(input, `salt of ${salt.length} bytes exceeds ${VERITY_MAX_SALT_SIZE}`)
}

/** Parses a hex salt; `""` and `"-"` mean "no salt", as in veritysetup and the agent. */
export function parseSaltHex(input: string, hex: string): Buffer {
  if (hex === '' || hex === '-') return Buffer.alloc(0)
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new InvalidInputError(input, `salt ${JSON.stringify(hex)} is not an even-length hex string`)
  const salt = Buffer.from(hex, 'hex')
  checkSalt(input, salt)
  return salt
}

export interface VerityTreeParams {
  dataBlockSize: number
  hashBlockSize: number
  algorithm: VerityAlgorithm
  hashType: VerityHashType
}

/** Block sizes, algorithm and hash type with veritysetup's defaults (4096, 4096, sha256, 1), validated. */
export function verityTreeParams(o: Partial<VerityTreeParams>): VerityTreeParams {
  const dataBlockSize = o.dataBlockSize ?? 4096
  const hashBlockSize = o.hashBlockSize ?? 4096
  checkBlockSize('dm-verity data block size', dataBlockSize)
  checkBlockSize('dm-verity hash block size', hashBlockSize)
  const algorithm = checkAlgorithm('dm-verity algorithm', o.algorithm ?? 'sha256')
  const hashType = checkHashType('dm-verity hash type', o.hashType ?? 1)
  return { dataBlockSize, hashBlockSize, algorithm, hashType }
}
