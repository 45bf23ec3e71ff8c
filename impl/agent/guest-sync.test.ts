// Byte layouts for ReseedRandomDev (struct rand_pool_info) and SetGuestDateTime (struct timeval).
import { describe, expect, it } from 'vitest'
import { randPoolInfo, RNDADDENTROPY, RNDRESEEDCRNG, timeval } from './guest-sync.ts'

describe('guest sync encodings', () => {
  it('rand_pool_info: entropy bits, byte count, data padded to 32-bit words', () => {
    const b = randPoolInfo(Uint8Array.from([1, 2, 3, 4, 5]))
    expect(b.length).toBe(8 + 8)
    expect(b.readInt32LE(0)).toBe(40)
    expect(b.readInt32LE(4)).toBe(5)
    expect([...b.subarray(8)]).toEqual([1, 2, 3, 4, 5, 0, 0, 0])
    expect(RNDADDENTROPY).toBe(0x40085203)
    expect(RNDRESEEDCRNG).toBe(0x5207)
  })

  it('timeval: two little-endian int64; a bad usec is refused', () => {
    const b = timeval(1_795_919_569n, 123_456n)
    expect(b.readBigInt64LE(0)).toBe(1_795_919_569n)
    expect(b.readBigInt64LE(8)).toBe(123_456n)
    expect(() => timeval(1n, 1_000_000n)).toThrow(/invalid guest time/)
  })
})
