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
