// `DmVerityInfo` (kata-types mount.rs, §11): the dm-verity parameters of one protected block device,
// as carried in JSON. Old JSON (six fields, also the Go runtime's) still loads: salt absent,
// hash_type 1, no_superblock false.
import { errorMessage, InvalidInputError } from '../errors.ts'

export interface DmVerityInfo {
  /** Hash algorithm name, e.g. `sha256` (upstream's confusing name for it). */
  hashtype: string
  /** Root hash, hex. */
  hash: string
  blocknum: number
  blocksize: number
  hashsize: number
  /** Byte offset of the hash area (superblock) on the device. */
  offset: number
  salt?: string
  /** dm-verity format version, 0 or 1. */
  hash_type: number
  no_superblock: boolean
}

const INPUT = 'DmVerityInfo'
const U64_MAX = 18446744073709551615n

function req<T>(o: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T {
  if (!(key in o)) throw new InvalidInputError(`${INPUT}.${key}`, 'missing')
  const v = o[key]
  if (!check(v)) throw new InvalidInputError(`${INPUT}.${key}`, `must be ${what}, got ${JSON.stringify(v)}`)
  return v
}
const isString = (v: unknown): v is string => typeof v === 'string'
const isU64 = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && BigInt(v) <= U64_MAX
const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
const isBool = (v: unknown): v is boolean => typeof v === 'boolean'

/** Builds a DmVerityInfo from decoded JSON, applying serde's defaults; unknown keys are ignored. */
export function dmVerityInfoFromJson(value: unknown): DmVerityInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError(INPUT, 'must be a JSON object')
  const o = value as Record<string, unknown>
  const info: DmVerityInfo = {
    hashtype: req(o, 'hashtype', isString, 'a string'),
    hash: req(o, 'hash', isString, 'a string'),
    blocknum: req(o, 'blocknum', isU64, 'an unsigned integer'),
    blocksize: req(o, 'blocksize', isU64, 'an unsigned integer'),
    hashsize: req(o, 'hashsize', isU64, 'an unsigned integer'),
    offset: req(o, 'offset', isU64, 'an unsigned integer'),
    hash_type: 1,
    no_superblock: false,
  }
  if (o['salt'] !== undefined && o['salt'] !== null) info.salt = req(o, 'salt', isString, 'a string or null')
  if (o['hash_type'] !== undefined) info.hash_type = req(o, 'hash_type', isU32, 'an unsigned 32-bit integer')
  if (o['no_superblock'] !== undefined) info.no_superblock = req(o, 'no_superblock', isBool, 'a boolean')
  return info
}

export function parseDmVerityInfo(json: string): DmVerityInfo {
  let v: unknown
  try {
    v = JSON.parse(json)
  } catch (e) {
    throw new InvalidInputError(INPUT, `not valid JSON: ${errorMessage(e)}`, {}, { cause: e })
  }
  return dmVerityInfoFromJson(v)
}

/** Serializes in upstream's field order; `salt` is left out when absent. */
export function serializeDmVerityInfo(info: DmVerityInfo): string {
  const out: Record<string, unknown> = {
    hashtype: info.hashtype, hash: info.hash, blocknum: info.blocknum, blocksize: info.blocksize,
    hashsize: info.hashsize, offset: info.offset,
  }
  if (info.salt !== undefined) out['salt'] = info.salt
  out['hash_type'] = info.hash_type
  out['no_superblock'] = info.no_superblock
  return JSON.stringify(out)
}

/**
 * An empty DmVerityInfo. Upstream's derived `Default` sets hash_type 0, unlike its serde default 1;
 * we use 1 in both places so a default-built value describes the format everyone writes.
 */
export function defaultDmVerityInfo(): DmVerityInfo {
  return { hashtype: '', hash: '', blocknum: 0, blocksize: 0, hashsize: 0, offset: 0, hash_type: 1, no_superblock: false }
}
