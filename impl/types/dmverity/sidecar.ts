// containerd's dm-verity sidecar (`<layer>.dmverity`, §7): a small JSON object naming the root hash
// and the offset of the verity superblock inside the layer file. Parsed as strictly as serde_json
// would: integers only for hashoffset, no duplicate known keys, bounded size.
import { readFile, stat } from 'node:fs/promises'
import { errorMessage, InvalidInputError } from '../errors.ts'

export const DMVERITY_MOUNT_OPTION = 'X-containerd.dmverity'
export const SIDECAR_MAX_BYTES = 65536
const U64_MAX = 18446744073709551615n

export interface DmVeritySidecar {
  roothash: string
  /** Decimal string form is kept in `hashoffsetText`; as a number it is exact up to 2^53. */
  hashoffset: number
  hashoffsetText: string
  /** Kata-only extension; `undefined` when absent or null. */
  salt?: string
}

/**
 * Raw value text of each top-level key of a JSON object, in order (duplicates kept). Only called on
 * text JSON.parse accepted, so the scan needs no error handling of its own.
 */
function topLevelRawValues(text: string): [string, string][] {
  const out: [string, string][] = []
  let i = 0
  const ws = () => { while (i < text.length && /\s/.test(text[i]!)) i++ }
  const skipString = () => { i++; while (text[i] !== '"') { if (text[i] === '\\') i++; i++ } i++ }
  const skipValue = () => {
    ws()
    const start = i
    if (text[i] === '"') { skipString(); return text.slice(start, i) }
    if (text[i] === '{' || text[i] === '[') {
      let depth = 0
      do {
        const c = text[i]
        if (c === '"') { skipString(); continue }
        if (c === '{' || c === '[') depth++
        if (c === '}' || c === ']') depth--
        i++
      } while (depth > 0)
      return text.slice(start, i)
    }
    while (i < text.length && !/[\s,}\]]/.test(text[i]!)) i++
    return text.slice(start, i)
  }
  ws(); i++ // {
  for (;;) {
    ws()
    if (text[i] === '}') break
    const ks = i
    skipString()
    const key = JSON.parse(text.slice(ks, i)) as string
    ws(); i++ // :
    out.push([key, skipValue()])
    ws()
    if (text[i] === ',') i++
  }
  return out
}

/** Parses sidecar JSON text; the problem names the sidecar `source` and what was wrong. */
export function parseDmVeritySidecar(text: string, source = 'dm-verity metadata'): DmVeritySidecar {
  const input = `dm-verity metadata ${source}`
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new InvalidInputError(input, `failed to parse dm-verity metadata JSON: ${errorMessage(e)}`, {}, { cause: e })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidInputError(input, 'failed to parse dm-verity metadata JSON: not an object')
  const raw = topLevelRawValues(text)
  const seen = new Set<string>()
  for (const [k] of raw) {
    if ((k === 'roothash' || k === 'hashoffset' || k === 'salt') && seen.has(k)) throw new InvalidInputError(input, `failed to parse dm-verity metadata JSON: duplicate field \`${k}\``)
    seen.add(k)
  }
  const o = value as Record<string, unknown>
  if (!('roothash' in o)) throw new InvalidInputError(input, 'failed to parse dm-verity metadata JSON: missing field `roothash`')
  if (typeof o['roothash'] !== 'string') throw new InvalidInputError(input, 'failed to parse dm-verity metadata JSON: `roothash` must be a string')
  const offRaw = raw.find(([k]) => k === 'hashoffset')?.[1]
  if (offRaw === undefined) throw new InvalidInputError(input, 'failed to parse dm-verity metadata JSON: missing field `hashoffset`')
  if (!/^(0|[1-9][0-9]*)$/.test(offRaw) || BigInt(offRaw) > U64_MAX) {
    throw new InvalidInputError(input, `failed to parse dm-verity metadata JSON: \`hashoffset\` must be an unsigned 64-bit integer, got ${offRaw.slice(0, 40)}`)
  }
  if (BigInt(offRaw) > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInputError(input, `hashoffset ${offRaw} is beyond any file size kataref can address`)
  const salt = o['salt']
  if (salt !== undefined && salt !== null && typeof salt !== 'string') throw new InvalidInputError(input, 'failed to parse dm-verity metadata JSON: `salt` must be a string or null')
  const out: DmVeritySidecar = { roothash: o['roothash'], hashoffset: Number(offRaw), hashoffsetText: offRaw }
  if (typeof salt === 'string') out.salt = salt
  return out
}

/** Reads and parses a sidecar file: at most 65 536 bytes, UTF-8. */
export async function readDmVeritySidecar(path: string): Promise<DmVeritySidecar> {
  const input = `dm-verity metadata file ${path}`
  const st = await stat(path).catch((e: unknown) => {
    throw new InvalidInputError(input, 'failed to stat dm-verity metadata file', { path }, { cause: e })
  })
  if (st.size > SIDECAR_MAX_BYTES) throw new InvalidInputError(input, `dm-verity metadata file too large: ${st.size} bytes (max ${SIDECAR_MAX_BYTES})`, { path })
  const bytes = await readFile(path).catch((e: unknown) => {
    throw new InvalidInputError(input, 'failed to read dm-verity metadata file', { path }, { cause: e })
  })
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch (e) {
    throw new InvalidInputError(input, 'failed to read dm-verity metadata file: not UTF-8', { path }, { cause: e })
  }
  return parseDmVeritySidecar(text, path)
}

/**
 * The sidecar path named by a mount's options: split each option at its first `=`, later duplicates
 * win, exact case-sensitive key. Options without `=` are ignored.
 */
export function dmVeritySidecarPath(options: readonly string[]): string | undefined {
  let found: string | undefined
  for (const opt of options) {
    const eq = opt.indexOf('=')
    if (eq < 0) continue
    if (opt.slice(0, eq) === DMVERITY_MOUNT_OPTION) found = opt.slice(eq + 1)
  }
  return found
}
