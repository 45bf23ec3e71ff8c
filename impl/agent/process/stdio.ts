// A byte queue between a child's output pipe and ReadStdout/ReadStderr: read(max) returns up to max
// bytes as soon as any are buffered, waits otherwise, and returns an empty array at EOF (the wire's
// "empty data = EOF"). Concurrent readers are served in order.
export class ByteQueue {
  private chunks: Buffer[] = []
  private ended = false
  private waiters: (() => void)[] = []

  push(b: Buffer): void {
    if (b.length === 0 || this.ended) return
    this.chunks.push(b)
    this.wake()
  }

  end(): void {
    this.ended = true
    this.wake()
  }

  /** A reader has been given the empty EOF reply. */
  eofDelivered = false

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  async read(max: number): Promise<Uint8Array> {
    const limit = max > 0 ? max : 64 * 1024
    while (this.chunks.length === 0) {
      if (this.ended) {
        this.eofDelivered = true
        return new Uint8Array()
      }
      await new Promise<void>((r) => this.waiters.push(r))
    }
    const out: Buffer[] = []
    let n = 0
    while (this.chunks.length > 0 && n < limit) {
      const c = this.chunks[0]!
      const take = Math.min(c.length, limit - n)
      out.push(c.subarray(0, take))
      n += take
      if (take === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(take)
    }
    return new Uint8Array(Buffer.concat(out))
  }
}
