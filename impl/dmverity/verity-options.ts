// X-kata.dmverity.* option vocabulary and `parse_dmverity_options` (§2, §6) → DmVerityInfo.
import { DmVerityOptionsError } from './errors.ts'

export const DMVERITY_ENABLED = 'X-kata.dmverity-enabled=true'
export const DMVERITY_ROOTHASH = 'X-kata.dmverity.roothash='
export const DMVERITY_HASHOFFSET = 'X-kata.dmverity.hashoffset='
export const DMVERITY_BLOCKSIZE = 'X-kata.dmverity.blocksize='
export const DMVERITY_HASHSIZE = 'X-kata.dmverity.hashsize='
export const DMVERITY_ALGORITHM = 'X-kata.dmverity.algorithm='
export const DMVERITY_SALT = 'X-kata.dmverity.salt='
export const DMVERITY_HASHTYPE = 'X-kata.dmverity.hashtype='
export const DMVERITY_NO_SUPERBLOCK = 'X-kata.dmverity.no-superblock='

export const U64_MAX = 18446744073709551615n
export const U32_MAX = 4294967295n

/** The `DmVerityInfo` record (kata-types mount.rs). */
export interface DmVerityInfo {
  /** Hash algorithm (upstream field `hashtype`), default `sha256`. */
  hashtype: string
  /** Root digest, hex. */
  hash: string
  /** Number of data blocks = offset / blocksize. */
  blocknum: bigint
  blocksize: bigint
  hashsize: bigint
  /** Byte offset of the verity metadata inside the partition. */
  offset: bigint
  /** Hex salt; undefined = none (`-` in the table). */
  salt?: string
  /** Verity format version (upstream field `hash_type`), default 1. */
  version: number
  /** No v1 superblock in front of the hash tree. */
  noSuperblock: boolean
}

/** True if the storage carries the verity marker (always compiled in, §13). */
export function hasDmverityMarker(options: readonly string[]): boolean {
  return options.includes(DMVERITY_ENABLED)
}

/** Strict decimal: optional leading `+`, digits only (leading zeros ok), range-checked (§6, §15). */
export function parseStrictUnsigned(value: string, max: bigint): bigint | undefined {
  if (!/^\+?[0-9]+$/.test(value)) return undefined
  const n = BigInt(value.startsWith('+') ? value.slice(1) : value)
  return n > max ? undefined : n
}

function parseBool(value: string): boolean | undefined {
  return value === 'true' ? true : value === 'false' ? false : undefined
}

function invalid(what: string, value: string): DmVerityOptionsError {
  return new DmVerityOptionsError(`Invalid ${what} value`, { value }, { cause: new Error(`cannot parse ${JSON.stringify(value)}`) })
}

/**
 * Scan options once, in order; later duplicates overwrite earlier ones; unknown options are ignored.
 * The first unparsable value aborts (so a parse error wins over a missing roothash, B12).
 */
export function parseDmverityOptions(options: readonly string[]): DmVerityInfo {
  let hashtype = 'sha256'
  let hash = ''
  let blocksize = 4096n
  let hashsize = 4096n
  let offset = 0n
  let salt: string | undefined
  let version = 1
  let noSuperblock = false

  for (const opt of options) {
    if (opt.startsWith(DMVERITY_ROOTHASH)) {
      hash = opt.slice(DMVERITY_ROOTHASH.length)
    } else if (opt.startsWith(DMVERITY_HASHOFFSET)) {
      const v = opt.slice(DMVERITY_HASHOFFSET.length)
      offset = parseStrictUnsigned(v, U64_MAX) ?? fail(invalid('hashoffset', v))
    } else if (opt.startsWith(DMVERITY_BLOCKSIZE)) {
      const v = opt.slice(DMVERITY_BLOCKSIZE.length)
      blocksize = parseStrictUnsigned(v, U64_MAX) ?? fail(invalid('blocksize', v))
    } else if (opt.startsWith(DMVERITY_HASHSIZE)) {
      const v = opt.slice(DMVERITY_HASHSIZE.length)
      hashsize = parseStrictUnsigned(v, U64_MAX) ?? fail(invalid('hashsize', v))
    } else if (opt.startsWith(DMVERITY_ALGORITHM)) {
      hashtype = opt.slice(DMVERITY_ALGORITHM.length)
    } else if (opt.startsWith(DMVERITY_SALT)) {
      const v = opt.slice(DMVERITY_SALT.length)
      salt = v === '' || v === '-' ? undefined : v
    } else if (opt.startsWith(DMVERITY_HASHTYPE)) {
      const v = opt.slice(DMVERITY_HASHTYPE.length)
      version = Number(parseStrictUnsigned(v, U32_MAX) ?? fail(invalid('hash type', v)))
    } else if (opt.startsWith(DMVERITY_NO_SUPERBLOCK)) {
      const v = opt.slice(DMVERITY_NO_SUPERBLOCK.length)
      noSuperblock = parseBool(v) ?? fail(invalid('no-superblock', v))
    }
  }

  const blocknum = offset > 0n && blocksize > 0n ? offset / blocksize : 0n
  if (hash === '') throw new DmVerityOptionsError('dm-verity roothash is required but not provided')
  if (offset === 0n) throw new DmVerityOptionsError('dm-verity hashoffset is required but not provided')
  if (blocksize === 0n || hashsize === 0n) throw new DmVerityOptionsError('dm-verity blocksize/hashsize must be non-zero', { blocksize, hashsize })
  if (offset % blocksize !== 0n) throw new DmVerityOptionsError(`dm-verity hashoffset ${offset} is not aligned to blocksize ${blocksize}`, { offset, blocksize })
  if (blocknum === 0n) throw new DmVerityOptionsError(`dm-verity blocknum resolved to zero (hashoffset ${offset}, blocksize ${blocksize})`)

  const info: DmVerityInfo = { hashtype, hash, blocknum, blocksize, hashsize, offset, version, noSuperblock }
  if (salt !== undefined) info.salt = salt
  return info
}

function fail(e: Error): never {
  throw e
}
