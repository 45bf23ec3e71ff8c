import { describe, expect, it } from 'vitest'
import { BlockIndexAllocator, blockNodeName } from './block-index-allocator.ts'

describe('BlockIndexAllocator (spec §2, §14 row 33)', () => {
  it('allocates 0,1,2; release 1 → next 1, then 4 (counter advances on reuse)', () => {
    const a = new BlockIndexAllocator()
    expect([a.allocate(), a.allocate(), a.allocate()]).toEqual([0, 1, 2])
    a.release(1)
    expect(a.allocate()).toBe(1)
    expect(a.allocate()).toBe(4)
  })

  it('reuses released indexes smallest-first', () => {
    const a = new BlockIndexAllocator()
    for (let i = 0; i < 5; i++) a.allocate()
    a.release(3)
    a.release(0)
    expect(a.allocate()).toBe(0)
    expect(a.allocate()).toBe(3)
  })

  it('refuses to release an index that is not allocated', () => {
    const a = new BlockIndexAllocator()
    expect(() => a.release(0)).toThrow(/block index: 0 is not allocated/)
  })

  it('node names are drive-<decimal index>', () => {
    expect(blockNodeName(0)).toBe('drive-0')
    expect(blockNodeName(12)).toBe('drive-12')
    expect(() => blockNodeName(-1)).toThrow()
  })
})

describe('BlockIndexAllocator against a model (fast-check)', () => {
  it('never hands out a live index; reuse is smallest-first; the counter advances on every allocation', async () => {
    const fc = await import('fast-check')
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(-1), fc.nat(20)), { maxLength: 80 }), (ops) => {
        const a = new BlockIndexAllocator()
        const live = new Set<number>()
        const released = new Set<number>()
        let counter = 0
        for (const op of ops) {
          if (op === -1 || !live.has(op)) {
            const expected = released.size > 0 ? Math.min(...released) : counter
            const got = a.allocate()
            if (got !== expected || live.has(got)) return false
            released.delete(got)
            live.add(got)
            counter++
          } else {
            a.release(op)
            live.delete(op)
            released.add(op)
          }
        }
        return true
      }),
    )
  })
})
