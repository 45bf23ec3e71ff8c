// Standalone VMDK text descriptor (createType twoGbMaxExtentFlat, FLAT extents), §6.2:
// renderer byte-compatible with upstream, and a strict parser for reading descriptors back.
import { InvalidInputError } from '../../impl/types/errors.ts'
import type { VmdkExtent } from './extents.ts'

export function vmdkTotalSectors(extents: readonly VmdkExtent[]): number {
  let total = 0
  for (const e of extents) {
    total += e.sectors
    if (!Number.isSafeInteger(total)) throw new InvalidInputError('VMDK extents', 'VMDK total sector count overflow')
  }
  if (total === 0) throw new InvalidInputError('VMDK extents', 'VMDK contains no non-empty extents')
  return total
}

/** Renders the descriptor; `pathOf` maps an extent to the path written (host path or /dev/fdset/N). */
export function renderVmdkDescriptor(extents: readonly VmdkExtent[], pathOf: (e: VmdkExtent) => string = (e) => e.path): string {
  const total = vmdkTotalSectors(extents)
  const lines = [
    '# Disk DescriptorFile',
    'version=1',
    'CID=fffffffe',
    'parentCID=ffffffff',
    'createType="twoGbMaxExtentFlat"',
    '',
    '# Extent description',
  ]
  for (const e of extents) {
    if (e.sectors === 0) continue
    const p = pathOf(e)
    if (p.includes('"') || p.includes('\n')) throw new InvalidInputError(`VMDK extent path ${JSON.stringify(p)}`, 'contains a quote or newline')
    // Always RW, as upstream writes it; the block device itself is attached read-only.
    lines.push(`RW ${e.sectors} FLAT "${p}" ${e.fileOffset}`)
  }
  lines.push('', '# The Disk Data Base', '#DDB', '',
    'ddb.virtualHWVersion = "4"',
    `ddb.geometry.cylinders = "${Math.ceil(total / (16 * 63))}"`,
    'ddb.geometry.heads = "16"',
    'ddb.geometry.sectors = "63"',
    'ddb.adapterType = "ide"')
  return lines.map((l) => `${l}\n`).join('')
}

export interface ParsedVmdkExtent extends VmdkExtent {
  access: 'RW' | 'RDONLY' | 'NOACCESS'
  type: string
}

export interface ParsedVmdkDescriptor {
  version: number
  cid: string
  parentCid: string
  createType: string
  extents: ParsedVmdkExtent[]
  ddb: Record<string, string>
  totalSectors: number
}

const MAX_DESCRIPTOR_BYTES = 1 << 20
const EXTENT_RE = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)")?(?:\s+(\d+))?\s*$/
const KV_RE = /^([A-Za-z][A-Za-z0-9._]*)\s*=\s*(?:"([^"]*)"|(\S*))\s*$/

export function parseVmdkDescriptor(text: string | Uint8Array): ParsedVmdkDescriptor {
  const input = 'VMDK descriptor'
  if (typeof text !== 'string') {
    if (text.length > MAX_DESCRIPTOR_BYTES) throw new InvalidInputError(input, `${text.length} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`)
    if (text.includes(0)) throw new InvalidInputError(input, 'contains NUL bytes (binary, not a text descriptor)')
    text = Buffer.from(text).toString('utf8')
  }
  if (text.length > MAX_DESCRIPTOR_BYTES) throw new InvalidInputError(input, `${text.length} characters exceeds ${MAX_DESCRIPTOR_BYTES}`)
  const lines = text.split('\n')
  const firstContent = lines.find((l) => l.trim() !== '')
  if (firstContent?.trim() !== '# Disk DescriptorFile') throw new InvalidInputError(`${input} line 1`, 'does not start with "# Disk DescriptorFile"')
  const header: Record<string, string> = {}
  const ddb: Record<string, string> = {}
  const extents: ParsedVmdkExtent[] = []
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim()
    if (line === '' || line.startsWith('#')) return
    const where = `${input} line ${i + 1}`
    const ext = EXTENT_RE.exec(line)
    if (ext) {
      const [, access, sectors, type, path, offset] = ext
      const n = Number(sectors)
      const off = offset === undefined ? 0 : Number(offset)
      if (!Number.isSafeInteger(n) || !Number.isSafeInteger(off)) throw new InvalidInputError(where, 'extent size or offset out of range')
      if (type !== 'ZERO' && path === undefined) throw new InvalidInputError(where, `${type} extent without a file name`)
      extents.push({ access: access as ParsedVmdkExtent['access'], sectors: n, type: type!, path: path ?? '', fileOffset: off })
      return
    }
    const kv = KV_RE.exec(line)
    if (!kv) throw new InvalidInputError(where, `not an extent or key = value line: ${JSON.stringify(line.slice(0, 80))}`)
    const [, key, quoted, bare] = kv
    const value = quoted ?? bare ?? ''
    if (key!.startsWith('ddb.')) ddb[key!] = value
    else header[key!] = value
  })
  const version = Number(header['version'])
  if (!(version >= 1 && version <= 3)) throw new InvalidInputError(`${input} version`, `${JSON.stringify(header['version'] ?? null)} is not 1..3`)
  const createType = header['createType']
  if (createType === undefined || createType === '') throw new InvalidInputError(`${input} createType`, 'missing')
  if (extents.length === 0) throw new InvalidInputError(`${input} extents`, 'no extent lines')
  let totalSectors = 0
  for (const e of extents) totalSectors += e.sectors
  if (!Number.isSafeInteger(totalSectors)) throw new InvalidInputError(`${input} extents`, 'total sector count overflows')
  return { version, cid: header['CID'] ?? '', parentCid: header['parentCID'] ?? '', createType, extents, ddb, totalSectors }
}
