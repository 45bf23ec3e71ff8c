// Verity device naming (§7) and the DM name rule (non-empty ASCII, at most 127 bytes).
import { InvalidInputError } from '../types/errors.ts'

export const DM_MAPPER_DIR = '/dev/mapper'
export const VERITY_NAME_PREFIX = 'kata-verity-'
/** The name is cut to this many bytes (upstream) … */
export const VERITY_NAME_CUT = 128
/** … but the DM name type accepts at most 127 (G8: a 128-byte cut result is rejected; mirrored). */
export const DM_NAME_MAX = 127

/** Final path component; '' when there is none ('/', '..'); a trailing '/' is ignored. */
export function finalComponent(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.')
  const last = parts.at(-1)
  return last === undefined || last === '..' ? '' : last
}

/** `kata-verity-<S>-off<offset>-<first 32 chars of hash>`, cut to 128 bytes. */
export function buildDmverityDeviceName(partitionPath: string, offset: bigint, hash: string): string {
  const name = `${VERITY_NAME_PREFIX}${finalComponent(partitionPath)}-off${offset}-${hash.slice(0, 32)}`
  return Buffer.from(name, 'utf8').subarray(0, VERITY_NAME_CUT).toString('latin1')
}

export function validateDmName(name: string): void {
  if (name.length === 0) throw new InvalidInputError('DM name', 'empty')
  if (!/^[\x01-\x7f]*$/.test(name)) throw new InvalidInputError('DM name', `not ASCII: ${JSON.stringify(name)}`)
  if (name.length > DM_NAME_MAX) throw new InvalidInputError('DM name', `${name.length} bytes, at most ${DM_NAME_MAX} allowed`, { name })
  if (name.includes('/') || name === '.' || name === '..') throw new InvalidInputError('DM name', `${JSON.stringify(name)} cannot name a node under ${DM_MAPPER_DIR}`)
}

export function mapperPath(name: string): string {
  return `${DM_MAPPER_DIR}/${name}`
}

/** Name from a node path: strips a leading `/dev/mapper/`, else unchanged (§10). */
export function nameFromMapperPath(path: string): string {
  const prefix = `${DM_MAPPER_DIR}/`
  return path.startsWith(prefix) ? path.slice(prefix.length) : path
}
