// Frame codec: header layout, chunking-independent decoding, oversize rejection before allocation,
// and robustness against garbage (fast-check, ≥ 1,000 runs per property).
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { KatarefError } from '../types/errors.ts'
import {
  FrameDecoder, FrameTooLargeError, HEADER_LENGTH, MAX_MESSAGE_LENGTH, MessageType,
  decodeHeader, encodeFrame, encodeHeader, type DecodedItem, type Frame,
} from './frame.ts'

const RUNS = 1000

const frameArb: fc.Arbitrary<Frame> = fc.record({
  streamId: fc.nat({ max: 0xffff_ffff }),
  type: fc.nat({ max: 255 }),
  flags: fc.nat({ max: 255 }),
  data: fc.uint8Array({ maxLength: 40 }),
})

/** Splits `bytes` at the given cut points (sorted, deduplicated, within range). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  out.push(bytes.subarray(prev))
  return out
}

function decodeAll(chunks: Uint8Array[], dec = new FrameDecoder()): DecodedItem[] {
  return chunks.flatMap((c) => dec.push(c))
}

function asPlain(items: DecodedItem[]): unknown[] {
  return items.map((i) => (i.kind === 'frame'
    ? { ...i.frame, data: Buffer.from(i.frame.data).toString('hex') }
    : { oversize: i.header, rejected: i.error.rejectedLength }))
}

describe('header codec', () => {
  it('is big-endian length, stream id, type, flags', () => {
    const h = encodeHeader({ length: 0x01020304, streamId: 0xa0b0c0d0, type: 2, flags: 5 })
    expect(h.toString('hex')).toBe('01020304a0b0c0d00205')
    expect(decodeHeader(h)).toEqual({ length: 0x01020304, streamId: 0xa0b0c0d0, type: 2, flags: 5 })
  })

  it('encodes a zero-length frame as the header alone and decodes it', () => {
    const b = encodeFrame({ streamId: 1, type: MessageType.RESPONSE, flags: 0, data: new Uint8Array() })
    expect(b.toString('hex')).toBe('00000000000000010200')
    expect(asPlain(new FrameDecoder().push(b))).toEqual([{ streamId: 1, type: 2, flags: 0, data: '' }])
  })

  it('refuses to encode more than 4 MiB of data', () => {
    const err = (() => {
      try { encodeFrame({ streamId: 1, type: 1, flags: 0, data: new Uint8Array(MAX_MESSAGE_LENGTH + 1) }) } catch (e) { return e }
    })()
    expect(err).toBeInstanceOf(FrameTooLargeError)
    expect(err).toMatchObject({ rejectedLength: MAX_MESSAGE_LENGTH + 1, maxLength: MAX_MESSAGE_LENGTH, code: 8 })
    expect(encodeFrame({ streamId: 1, type: 1, flags: 0, data: new Uint8Array(MAX_MESSAGE_LENGTH) }).length).toBe(MAX_MESSAGE_LENGTH + HEADER_LENGTH)
  })
})

describe('FrameDecoder properties', () => {
  it('random frames decode identically whether whole, byte by byte, or in random chunks', () => {
    fc.assert(fc.property(fc.array(frameArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
      const bytes = Buffer.concat(frames.map((f) => encodeFrame(f)))
      const expected = frames.map((f) => ({ ...f, data: Buffer.from(f.data).toString('hex') }))
      expect(asPlain(decodeAll([bytes]))).toEqual(expected)
      expect(asPlain(decodeAll(split(bytes, cuts)))).toEqual(expected)
      expect(asPlain(decodeAll([...bytes].map((b) => Uint8Array.of(b))))).toEqual(expected)
    }), { numRuns: RUNS })
  })

  it('random frames decode identically when split in two at every byte boundary', () => {
    fc.assert(fc.property(fc.array(frameArb, { minLength: 1, maxLength: 3 }), (frames) => {
      const bytes = Buffer.concat(frames.map((f) => encodeFrame(f)))
      const expected = asPlain(decodeAll([bytes]))
      for (let i = 0; i <= bytes.length; i++) {
        const dec = new FrameDecoder()
        expect(asPlain(decodeAll([bytes.subarray(0, i), bytes.subarray(i)], dec))).toEqual(expected)
        expect(dec.idle).toBe(true)
      }
    }), { numRuns: RUNS })
  })

  it('rejects an oversize header before allocating anything for it', () => {
    fc.assert(fc.property(
      fc.integer({ min: MAX_MESSAGE_LENGTH + 1, max: 0xffff_ffff }),
      fc.nat({ max: 0xffff_ffff }),
      fc.array(fc.nat(), { maxLength: 4 }),
      fc.uint8Array({ maxLength: 64 }),
      (length, streamId, cuts, someData) => {
        const allocations: number[] = []
        const dec = new FrameDecoder({ allocate: (n) => { allocations.push(n); return new Uint8Array(n) } })
        const header = encodeHeader({ length, streamId, type: MessageType.REQUEST, flags: 0 })
        const items = decodeAll(split(Buffer.concat([header, someData]), cuts), dec)
        expect(allocations).toEqual([])
        expect(items).toHaveLength(1)
        const [item] = items
        expect(item?.kind).toBe('oversize')
        if (item?.kind !== 'oversize') return
        expect(item.error).toBeInstanceOf(FrameTooLargeError)
        expect(item.error.rejectedLength).toBe(length)
        expect(item.error.maxLength).toBe(MAX_MESSAGE_LENGTH)
        expect(item.error.message).toBe(`message length ${length} exceed maximum message size of ${MAX_MESSAGE_LENGTH}`)
        expect(item.header.streamId).toBe(streamId)
        // Nothing of the skipped data is held.
        expect(dec.pendingBytes).toBe(0)
      },
    ), { numRuns: RUNS })
  })

  it('skips an oversize frame and resynchronises on the next one (small limit, random chunking)', () => {
    const max = 16
    fc.assert(fc.property(
      fc.array(fc.record({ streamId: fc.nat({ max: 0xffff_ffff }), type: fc.nat({ max: 255 }), flags: fc.nat({ max: 255 }), data: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => Buffer.concat([encodeHeader({ ...f, length: f.data.length }), f.data])))
        const allocations: number[] = []
        const items = decodeAll(split(bytes, cuts), new FrameDecoder({ maxLength: max, allocate: (n) => { allocations.push(n); return new Uint8Array(n) } }))
        expect(items.map((i) => i.kind)).toEqual(frames.map((f) => (f.data.length > max ? 'oversize' : 'frame')))
        expect(allocations.every((n) => n <= max)).toBe(true)
        items.forEach((item, k) => {
          const f = frames[k]!
          if (item.kind === 'frame') expect(Buffer.from(item.frame.data).equals(Buffer.from(f.data))).toBe(true)
          else expect(item.error).toMatchObject({ rejectedLength: f.data.length, maxLength: max })
        })
      },
    ), { numRuns: RUNS })
  })

  it('random garbage never throws (and so never an untyped error), with default and tiny limits', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom(undefined, 0, 8, 64), (garbage, cuts, maxLength) => {
      const dec = new FrameDecoder(maxLength === undefined ? {} : { maxLength })
      try {
        for (const item of decodeAll(split(garbage, cuts), dec)) {
          if (item.kind === 'oversize') expect(item.error).toBeInstanceOf(KatarefError)
        }
      } catch (e) {
        expect(e).toBeInstanceOf(KatarefError)
        throw e
      }
    }), { numRuns: RUNS })
  })
})

describe('oversize frame at the real 4 MiB limit', () => {
  it('skips 4 MiB + 1 data bytes and decodes the following frame', () => {
    const dec = new FrameDecoder()
    const big = MAX_MESSAGE_LENGTH + 1
    const items: DecodedItem[] = dec.push(encodeHeader({ length: big, streamId: 5, type: 1, flags: 0 }))
    const filler = Buffer.alloc(64 * 1024)
    for (let left = big; left > 0; left -= filler.length) items.push(...dec.push(filler.subarray(0, Math.min(left, filler.length))))
    expect(dec.pendingBytes).toBe(0)
    items.push(...dec.push(encodeFrame({ streamId: 7, type: 1, flags: 0, data: Buffer.from('ok') })))
    expect(asPlain(items)).toEqual([
      { oversize: { length: big, streamId: 5, type: 1, flags: 0 }, rejected: big },
      { streamId: 7, type: 1, flags: 0, data: Buffer.from('ok').toString('hex') },
    ])
  })
})
