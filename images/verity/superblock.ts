// The 512-byte dm-verity v1 superblock (host-erofs-gpt-verity.md §8): encoder and strict parser.
import { randomUUID } from 'node:crypto'
import { InvalidInputError } from '../../impl/types/errors.ts'
import {
  VERITY_MAX_SALT_SIZE, VERITY_SUPERBLOCK_SIZE, checkAlgorithm, checkBlockSize,
  type VerityAlgorithm, type VerityHashType,
} from './params.ts'

export const VERITY_SIGNATURE = Buffer.from('verity\0\0', 'latin1')

export interface VeritySuperblock {
  version: 1
  hashType: VerityHashType
  /** Canonical lowercase UUID string. */
  uuid: string
  algorithm: VerityAlgorithm
  dataBlockSize: number
  hashBlockSize: number
  dataBlocks: number
  salt: Buffer
}

const INPUT = 'dm-verity superblock'

export function uuidToBytes(uuid: string): Buffer {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(uuid)) {
    throw new InvalidInputError('dm-verity UUID', `${JSON.stringify(uuid)} is not a canonical UUID`)
  }
  return Buffer.from(uuid.replaceAll('-', ''), 'hex')
}

export function uuidFromBytes(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

export function encodeSuperblock(sb: Omit<VeritySuperblock, 'version' | 'uuid'> & { uuid?: string }): Buffer {
  const out = Buffer.alloc(VERITY_SUPERBLOCK_SIZE)
  if (sb.salt.length > VERITY_MAX_SALT_SIZE) throw new InvalidInputError(`${INPUT} salt`, `${sb.salt.length} bytes exceeds ${VERITY_MAX_SALT_SIZE}`)
  VERITY_SIGNATURE.copy(out, 0)
  out.writeUInt32LE(1, 8)
  out.writeUInt32LE(sb.hashType, 12)
  uuidToBytes(sb.uuid ?? randomUUID()).copy(out, 16)
  out.write(sb.algorithm, 32, 31, 'latin1')
  out.writeUInt32LE(sb.dataBlockSize, 64)
  out.writeUInt32LE(sb.hashBlockSize, 68)
  out.writeBigUInt64LE(BigInt(sb.dataBlocks), 72)
  out.writeUInt16LE(sb.salt.length, 80)
  sb.salt.copy(out, 88)
  return out
}

/** True when `bytes` begins with the "verity\0\0" signature. */
export function hasVeritySignature(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).equals(VERITY_SIGNATURE)
}

/** Parses and validates a v1 superblock; any defect is an InvalidInputError naming the field. */
export function parseSuperblock(bytes: Uint8Array): VeritySuperblock {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.length < VERITY_SUPERBLOCK_SIZE) throw new InvalidInputError(INPUT, `only ${b.length} of ${VERITY_SUPERBLOCK_SIZE} bytes`)
  if (!hasVeritySignature(b)) throw new InvalidInputError(`${INPUT} signature`, `expected "verity\\0\\0", found ${b.subarray(0, 8).toString('hex')}`)
  const version = b.readUInt32LE(8)
  if (version !== 1) throw new InvalidInputError(`${INPUT} version`, `${version} is not 1`)
  const hashType = b.readUInt32LE(12)
  if (hashType !== 0 && hashType !== 1) throw new InvalidInputError(`${INPUT} hash_type`, `${hashType} is neither 0 nor 1`)
  const algField = b.subarray(32, 64)
  const nul = algField.indexOf(0)
  const algName = algField.subarray(0, nul < 0 ? 32 : nul).toString('latin1')
  if (nul < 0 || !algField.subarray(nul).every((x) => x === 0)) throw new InvalidInputError(`${INPUT} algorithm`, 'not a NUL-padded name')
  const algorithm = checkAlgorithm(`${INPUT} algorithm`, algName)
  const dataBlockSize = b.readUInt32LE(64)
  checkBlockSize(`${INPUT} data_block_size`, dataBlockSize)
  const hashBlockSize = b.readUInt32LE(68)
  checkBlockSize(`${INPUT} hash_block_size`, hashBlockSize)
  const dataBlocksBig = b.readBigUInt64LE(72)
  if (dataBlocksBig === 0n || dataBlocksBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInputError(`${INPUT} data_blocks`, `${dataBlocksBig} is out of range`)
  const saltSize = b.readUInt16LE(80)
  if (saltSize > VERITY_MAX_SALT_SIZE) throw new InvalidInputError(`${INPUT} salt_size`, `${saltSize} exceeds ${VERITY_MAX_SALT_SIZE}`)
  return {
    version: 1,
    hashType,
    uuid: uuidFromBytes(b.subarray(16, 32)),
    algorithm,
    dataBlockSize,
    hashBlockSize,
    dataBlocks: Number(dataBlocksBig),
    salt: Buffer.from(b.subarray(88, 88 + saltSize)),
  }
}
