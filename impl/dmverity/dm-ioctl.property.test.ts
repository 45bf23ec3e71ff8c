// fast-check properties of the byte codec and the strict integer grammar.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DM_IOCTL_SIZE, decodeDmDev, decodeDmIoctlHeader, decodeTargetSpecs, encodeDmDev, encodeDmIoctlHeader, encodeTargetSpecs, makedev,
} from './dm-ioctl.ts'
import { parseStrictUnsigned, U64_MAX } from './verity-options.ts'

const ascii = (max: number) => fc.string({ unit: fc.integer({ min: 1, max: 127 }).map((c) => String.fromCharCode(c)), maxLength: max })
const u32 = fc.integer({ min: 0, max: 0xffffffff })

describe('dm_ioctl codec properties', () => {
  it('header round-trips for any field values', () => {
    fc.assert(fc.property(
      fc.tuple(u32, u32, u32), u32, u32, u32, fc.integer({ min: -0x80000000, max: 0x7fffffff }), u32, u32, fc.bigInt({ min: 0n, max: U64_MAX }), ascii(127), ascii(128),
      (version, dataSize, dataStart, targetCount, openCount, flags, eventNr, dev, name, uuid) => {
        const h = { version, dataSize, dataStart, targetCount, openCount, flags, eventNr, dev, name, uuid }
        const buf = encodeDmIoctlHeader(h)
        expect(buf.length).toBe(DM_IOCTL_SIZE)
        expect(decodeDmIoctlHeader(buf)).toEqual(h)
        expect(buf.subarray(305).equals(Buffer.alloc(7))).toBe(true)
      }), { numRuns: 300 })
  })
  it('target specs round-trip and every spec starts 8-byte aligned', () => {
    const target = fc.record({
      sectorStart: fc.bigInt({ min: 0n, max: U64_MAX }), length: fc.bigInt({ min: 0n, max: U64_MAX }),
      targetType: ascii(15).filter((s) => s.length > 0), params: ascii(300),
    })
    fc.assert(fc.property(fc.array(target, { minLength: 1, maxLength: 5 }), (ts) => {
      const b = encodeTargetSpecs(ts)
      expect(b.length % 8).toBe(0)
      expect(decodeTargetSpecs(b, 0, ts.length, 'relative').map(({ status: _s, ...t }) => t)).toEqual(ts)
    }), { numRuns: 200 })
  })
  it('dev encoding: decode(encode(major, minor)) for 12-bit majors and 20-bit minors', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 0xfffff }), (maj, min) => {
      expect(decodeDmDev(encodeDmDev(maj, min))).toEqual({ major: maj, minor: min })
      const d = makedev(maj, min)
      // glibc major()/minor() recover the pair
      expect(Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))).toBe(maj)
      expect(Number((d & 0xffn) | ((d >> 12n) & ~0xffn))).toBe(min)
    }))
  })
  it('strict unsigned grammar accepts exactly ^\\+?[0-9]+$ within range', () => {
    fc.assert(fc.property(fc.string({ maxLength: 25 }), (s) => {
      const v = parseStrictUnsigned(s, U64_MAX)
      if (/^\+?[0-9]+$/.test(s) && BigInt(s.replace('+', '')) <= U64_MAX) expect(v).toBe(BigInt(s.replace('+', '')))
      else expect(v).toBeUndefined()
    }), { numRuns: 500 })
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: U64_MAX * 2n }), (n) => {
      expect(parseStrictUnsigned(String(n), U64_MAX)).toBe(n <= U64_MAX ? n : undefined)
    }))
  })
})
