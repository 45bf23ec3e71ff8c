// Property tests: random and corrupted bytes fed to every parser of untrusted input. Whatever the
// input, a parser either returns a value or throws a typed KatarefError, never anything else.
import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { crc32 } from 'node:zlib'
import { KatarefError } from '../../impl/types/errors.ts'
import { parseGptHead, renderHeadImage, gptLayout, HEADER_SIZE } from '../gpt/index.ts'
import { parseVmdkDescriptor, renderVmdkDescriptor } from '../vmdk/index.ts'
import { parseSuperblock, encodeSuperblock } from '../verity/index.ts'
import { parseDmVeritySidecar } from '../../impl/types/dmverity/index.ts'

const RUNS = 1000

function onlyTyped(f: () => unknown): boolean {
  try {
    f()
    return true
  } catch (e) {
    if (e instanceof KatarefError) return true
    throw e
  }
}

/** Byte edits applied to a copy of `base`. */
const edits = (len: number) => fc.array(fc.record({ at: fc.nat({ max: len - 1 }), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 12 })
function mutate(base: Uint8Array, es: { at: number; v: number }[]): Buffer {
  const b = Buffer.from(base)
  for (const e of es) b[e.at] = e.v
  return b
}

// Only the first 34 sectors matter to the reader; fuzzing a 17 KiB head keeps runs fast.
const goodHead = renderHeadImage(gptLayout([4096, 1_048_577, 3 << 20].map((s, i) => ({ path: `/s/${i}/layer.erofs`, sizeBytes: s })))).subarray(0, 34 * 512)
function refreshCrcs(b: Buffer): Buffer {
  const h = b.subarray(512, 1024)
  const entries = h.readUInt32LE(80) * h.readUInt32LE(84)
  const lba = Number(h.readBigUInt64LE(72))
  if (entries <= 1 << 20 && lba * 512 + entries <= b.length) h.writeUInt32LE(crc32(b.subarray(lba * 512, lba * 512 + entries)), 88)
  const size = Math.min(h.readUInt32LE(12), 512)
  h.writeUInt32LE(0, 16)
  h.writeUInt32LE(crc32(h.subarray(0, Math.max(size, HEADER_SIZE))), 16)
  return b
}

describe('property: parsers only throw typed errors', () => {
  it('GPT head reader', () => {
    const headEdits = edits(goodHead.length)
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 20_000 }),
      headEdits.map((es) => mutate(goodHead, es)),
      // Same, with CRCs recomputed so the field checks behind them run too.
      headEdits.map((es) => refreshCrcs(mutate(goodHead, es))),
      // Header fields (LBAs, counts, sizes) edited before CRCs are refreshed.
      fc.array(fc.record({ at: fc.integer({ min: 512, max: 512 + 91 }), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 })
        .map((es) => refreshCrcs(mutate(goodHead, es))),
      fc.nat({ max: goodHead.length }).map((n) => goodHead.subarray(0, n)),
    )
    fc.assert(fc.property(input, (b) => onlyTyped(() => parseGptHead(b))), { numRuns: RUNS })
  })

  it('VMDK descriptor parser', () => {
    const good = renderVmdkDescriptor([{ path: '/h', sectors: 2048, fileOffset: 0 }, { path: '/l', sectors: 8, fileOffset: 0 }])
    const lines = good.split('\n')
    const input = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc.uint8Array({ maxLength: 400 }),
      fc.array(fc.oneof(fc.constantFrom(...lines), fc.string({ maxLength: 60 }), fc.constantFrom('RW 1 FLAT "x" 99999999999999999999', 'RW 5 ZERO', 'RDONLY 1 SPARSE', 'version=7', 'createType=')), { maxLength: 20 }).map((ls) => ['# Disk DescriptorFile', ...ls].join('\n')),
      edits(good.length).map((es) => mutate(Buffer.from(good), es).toString('latin1')),
    )
    fc.assert(fc.property(input, (t) => onlyTyped(() => parseVmdkDescriptor(t))), { numRuns: RUNS })
  })

  it('dm-verity superblock parser', () => {
    const good = encodeSuperblock({ hashType: 1, algorithm: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 1096, salt: Buffer.alloc(32), uuid: '00000000-0000-4000-8000-000000000000' })
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      edits(512).map((es) => mutate(good, es)),
      fc.array(fc.record({ at: fc.integer({ min: 8, max: 88 }), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }).map((es) => mutate(good, es)),
      fc.nat({ max: 512 }).map((n) => good.subarray(0, n)),
    )
    fc.assert(fc.property(input, (b) => onlyTyped(() => {
      const sb = parseSuperblock(b)
      // Anything accepted must be self-consistent.
      expect(sb.salt.length).toBeLessThanOrEqual(256)
      expect(sb.dataBlocks).toBeGreaterThan(0)
    })), { numRuns: RUNS })
  })

  it('containerd dm-verity sidecar parser', () => {
    const good = JSON.stringify({ roothash: 'b576fb77', hashoffset: 4489216 }, null, 2)
    const field = fc.oneof(fc.jsonValue(), fc.constantFrom('1', -1, 1.5, 1e300, 18446744073709551615, null, '', 'abcd'))
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ roothash: field, hashoffset: field, salt: field }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
      fc.tuple(field, field).map(([a, b]) => `{"roothash": ${JSON.stringify(a) ?? 'null'}, "hashoffset": ${JSON.stringify(b) ?? 'null'}, "hashoffset": 1}`),
      edits(good.length).map((es) => mutate(Buffer.from(good), es).toString('latin1')),
    )
    fc.assert(fc.property(input, (t) => onlyTyped(() => {
      const s = parseDmVeritySidecar(t)
      expect(Number.isSafeInteger(s.hashoffset) && s.hashoffset >= 0).toBe(true)
      expect(typeof s.roothash).toBe('string')
    })), { numRuns: RUNS })
  })
})
