// Translation of a containerd dm-verity sidecar into the `X-kata.dmverity.*` options the agent reads
// for one GPT partition (§8–§9), including the superblock probe that decides `no-superblock` and salt.
//
// Two behaviours: 'fixed' (default) corrects the upstream quirks that make guest verification fail
// (§15.1 empty superblock salt, §15.2 block sizes / algorithm / hash type not forwarded);
// 'upstream' reproduces HEAD byte for byte, for the conformance report's side-by-side.
import { open } from 'node:fs/promises'
import { parseSuperblock, VERITY_SIGNATURE } from '../../../images/verity/superblock.ts'
import type { DmVeritySidecar } from './sidecar.ts'

/** containerd's default salt: 32 zero bytes. */
export const CONTAINERD_DEFAULT_SALT = '0'.repeat(64)
export type DmVerityQuirks = 'fixed' | 'upstream'

/** Agent defaults (§10): options equal to these need not be sent. */
const AGENT_DEFAULTS = { blocksize: 4096, hashsize: 4096, algorithm: 'sha256', hashtype: 1 }

export interface SuperblockProbe {
  present: boolean
  /** Up to 512 bytes read at hashoffset (fewer near EOF). */
  bytes: Buffer
}

/** Reads what is at `hashoffset`; unreadable or too short means "absent", never an error (§14). */
export async function probeSuperblock(layerPath: string, hashoffset: number): Promise<SuperblockProbe> {
  let fh
  try {
    fh = await open(layerPath, 'r')
  } catch {
    return { present: false, bytes: Buffer.alloc(0) }
  }
  try {
    const buf = Buffer.alloc(512)
    let got = 0
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, hashoffset + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    const bytes = buf.subarray(0, got)
    return { present: got >= 8 && bytes.subarray(0, 8).equals(VERITY_SIGNATURE), bytes }
  } catch {
    return { present: false, bytes: Buffer.alloc(0) }
  } finally {
    await fh.close()
  }
}

/** Upstream's salt read: signature, version 1, 1 ≤ salt_size ≤ 256 and the salt readable. */
function upstreamSuperblockSalt(b: Buffer): string | undefined {
  if (b.length < 88 || !b.subarray(0, 8).equals(VERITY_SIGNATURE) || b.readUInt32LE(8) !== 1) return undefined
  const size = b.readUInt16LE(80)
  if (size < 1 || size > 256 || b.length < 88 + size) return undefined
  return b.subarray(88, 88 + size).toString('hex')
}

export interface DmVerityOptionSource {
  sidecar: DmVeritySidecar
  /** The layer file (data + superblock + tree). Upstream's helper also runs without one. */
  layerPath?: string
  quirks?: DmVerityQuirks
}

/** The dm-verity options for one partition, in upstream's order, plus (fixed) the format fields. */
export async function dmVerityPartitionOptions(src: DmVerityOptionSource): Promise<string[]> {
  const { sidecar, layerPath } = src
  const quirks = src.quirks ?? 'fixed'
  const probe = layerPath === undefined ? undefined : await probeSuperblock(layerPath, sidecar.hashoffset)
  const noSuperblock = probe === undefined ? false : !probe.present
  let salt = CONTAINERD_DEFAULT_SALT
  const extra: string[] = []
  if (sidecar.salt !== undefined) {
    salt = sidecar.salt
  } else if (probe?.present) {
    salt = upstreamSuperblockSalt(probe.bytes) ?? CONTAINERD_DEFAULT_SALT
  }
  if (quirks === 'fixed' && probe?.present) {
    let sb
    try {
      sb = parseSuperblock(probe.bytes)
    } catch {
      sb = undefined // not a usable v1 superblock: keep upstream's defaults
    }
    if (sb) {
      // §15.1: a superblock with no salt means "no salt", not containerd's default zero salt.
      if (sidecar.salt === undefined && sb.salt.length === 0) salt = ''
      // §15.2: tell the agent the real format instead of letting its 4096/sha256/v1 defaults apply.
      if (sb.dataBlockSize !== AGENT_DEFAULTS.blocksize) extra.push(`X-kata.dmverity.blocksize=${sb.dataBlockSize}`)
      if (sb.hashBlockSize !== AGENT_DEFAULTS.hashsize) extra.push(`X-kata.dmverity.hashsize=${sb.hashBlockSize}`)
      if (sb.algorithm !== AGENT_DEFAULTS.algorithm) extra.push(`X-kata.dmverity.algorithm=${sb.algorithm}`)
      if (sb.hashType !== AGENT_DEFAULTS.hashtype) extra.push(`X-kata.dmverity.hashtype=${sb.hashType}`)
    }
  }
  return [
    'X-kata.dmverity-enabled=true',
    `X-kata.dmverity.roothash=${sidecar.roothash}`,
    `X-kata.dmverity.hashoffset=${sidecar.hashoffsetText}`,
    `X-kata.dmverity.no-superblock=${noSuperblock}`,
    `X-kata.dmverity.salt=${salt}`,
    ...extra,
  ]
}
