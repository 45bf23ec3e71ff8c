// The dm-verity table (§8): hash_start_block arithmetic, the one `verity` target, its 10-field
// params string, and kataref's pre-ioctl validation of every value that could change its meaning.
import { InvalidInputError } from '../types/errors.ts'
import type { DmTarget } from './dm-ioctl.ts'
import type { DmVerityInfo } from './verity-options.ts'

/** The v1 superblock occupies the first 512 bytes of the hash area. */
export const VERITY_SUPERBLOCK_BYTES = 512n

/** hash_start_block in units of `hashsize` (§8.1); both divisions truncate. */
export function hashStartBlock(offset: bigint, hashsize: bigint, noSuperblock: boolean): bigint {
  const base = offset / hashsize
  return noSuperblock ? base : base + (VERITY_SUPERBLOCK_BYTES + hashsize - 1n) / hashsize
}

/** `<hash_type> <P> <P> <blocksize> <hashsize> <blocknum> <hash_start> <algorithm> <hash> <salt|->` (§8.3). */
export function verityParams(info: DmVerityInfo, partitionPath: string): string {
  return [
    info.version, partitionPath, partitionPath, info.blocksize, info.hashsize, info.blocknum,
    hashStartBlock(info.offset, info.hashsize, info.noSuperblock), info.hashtype, info.hash, info.salt ?? '-',
  ].join(' ')
}

/** The single target: sector 0, length = blocknum*blocksize/512 sectors (§8.2). */
export function verityTarget(info: DmVerityInfo, partitionPath: string): DmTarget {
  return { sectorStart: 0n, length: (info.blocknum * info.blocksize) / 512n, targetType: 'verity', params: verityParams(info, partitionPath) }
}

/** dmsetup notation: `0 <length> verity <params>`. */
export function formatTableLine(t: DmTarget): string {
  return `${t.sectorStart} ${t.length} ${t.targetType} ${t.params}`
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/
const ALGORITHM = /^[A-Za-z0-9][A-Za-z0-9_.()-]*$/
const DEVICE_PATH = /^\/[^\s\0]+$/

/**
 * kataref validation before any ioctl (upstream leaves these to the kernel, §6): a value with a
 * space or newline would shift the table's fields, so root hash and salt must be even-length hex,
 * the algorithm a crypto-API name, the partition an absolute path without whitespace. Also fixes
 * G9: a hashoffset that is not a multiple of hashsize would silently truncate hash_start_block.
 */
export function validateVerityTableInput(info: DmVerityInfo, partitionPath: string): void {
  if (!HEX.test(info.hash)) throw new InvalidInputError('dm-verity roothash', `must be an even number of hex digits, got ${JSON.stringify(info.hash)}`)
  if (info.salt !== undefined && !HEX.test(info.salt)) throw new InvalidInputError('dm-verity salt', `must be hex digits, empty or '-', got ${JSON.stringify(info.salt)}`)
  if (!ALGORITHM.test(info.hashtype)) throw new InvalidInputError('dm-verity algorithm', `not a hash algorithm name: ${JSON.stringify(info.hashtype)}`)
  if (!DEVICE_PATH.test(partitionPath)) throw new InvalidInputError('dm-verity data device', `must be an absolute path without whitespace, got ${JSON.stringify(partitionPath)}`)
  if (info.offset % info.hashsize !== 0n) {
    throw new InvalidInputError('dm-verity hashoffset', `${info.offset} is not aligned to hashsize ${info.hashsize} (G9: hash_start_block would truncate)`)
  }
}
