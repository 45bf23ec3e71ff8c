// Per-sandbox block index allocator (spec §2, runtime-rs device_manager.rs).
// Indexes start at 0; a released index is reused smallest-first, but the counter still
// advances on reuse: allocate 0,1,2; release 1; next = 1, then 4 (3 is skipped).
import { InvalidInputError } from '../../types/errors.ts'

export class BlockIndexAllocator {
  private counter = 0
  private readonly released = new Set<number>()
  private readonly inUse = new Set<number>()

  allocate(): number {
    let index: number
    if (this.released.size > 0) {
      index = Math.min(...this.released)
      this.released.delete(index)
    } else {
      index = this.counter
    }
    this.counter++
    this.inUse.add(index)
    return index
  }

  release(index: number): void {
    if (!this.inUse.has(index)) throw new InvalidInputError('block index', `${index} is not allocated`, { index })
    this.inUse.delete(index)
    this.released.add(index)
  }

  isAllocated(index: number): boolean {
    return this.inUse.has(index)
  }
}

/** Block node name = frontend device id (spec §2): `drive-<index>`, decimal. */
export function blockNodeName(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new InvalidInputError('block index', `must be a non-negative integer, got ${index}`)
  return `drive-${index}`
}
