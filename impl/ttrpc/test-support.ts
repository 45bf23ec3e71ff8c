// Helpers for the ttrpc tests: hex literals, a raw frame-level peer, and connected client/server pairs.
import type { Duplex } from 'node:stream'
import { createDuplexPair } from './duplex-pair.ts'
import { FrameDecoder, encodeFrame, type DecodedItem, type Frame } from './frame.ts'
import { TtrpcClient } from './client.ts'
import type { TtrpcServer, ServerConnection } from './server.ts'

/** `hex('00 0a "ab"')`: hex byte pairs plus double-quoted ASCII runs; whitespace ignored. */
export function hex(s: string): Buffer {
  const parts: Buffer[] = []
  const re = /"([^"]*)"|([0-9a-fA-F]{2})|\s+/y
  let pos = 0
  while (pos < s.length) {
    re.lastIndex = pos
    const m = re.exec(s)
    if (!m) throw new Error(`bad hex literal at ${pos}: ${s.slice(pos)}`)
    if (m[1] !== undefined) parts.push(Buffer.from(m[1], 'ascii'))
    else if (m[2] !== undefined) parts.push(Buffer.from(m[2], 'hex'))
    pos = re.lastIndex
  }
  return Buffer.concat(parts)
}

/** The far end of a connection, seen as raw bytes and decoded frames. */
export class RawPeer {
  raw = Buffer.alloc(0)
  readonly items: DecodedItem[] = []
  ended = false
  private readonly decoder = new FrameDecoder()
  private waiters: Array<() => void> = []

  constructor(readonly duplex: Duplex) {
    duplex.on('data', (chunk: Buffer) => {
      this.raw = Buffer.concat([this.raw, chunk])
      this.items.push(...this.decoder.push(chunk))
      this.wake()
    })
    duplex.on('end', () => { this.ended = true; this.wake() })
    duplex.on('close', () => { this.ended = true; this.wake() })
    duplex.on('error', () => {})
  }

  write(bytes: Uint8Array): void {
    this.duplex.write(bytes)
  }

  sendFrame(f: Frame): void {
    this.duplex.write(encodeFrame(f))
  }

  /** Waits until `pred` holds (checked after every chunk), or fails after `timeoutMs`. */
  async until(pred: () => boolean, timeoutMs = 2000): Promise<void> {
    const start = Date.now()
    while (!pred()) {
      if (Date.now() - start > timeoutMs) throw new Error('RawPeer: timed out waiting')
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  async frames(n: number): Promise<Frame[]> {
    await this.until(() => this.items.filter((i) => i.kind === 'frame').length >= n)
    return this.items.flatMap((i) => (i.kind === 'frame' ? [i.frame] : [])).slice(0, n)
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }
}

export function clientWithRawPeer(): { client: TtrpcClient; peer: RawPeer } {
  const [a, b] = createDuplexPair()
  return { client: new TtrpcClient(a), peer: new RawPeer(b) }
}

export function serverWithRawPeer(server: TtrpcServer): { conn: ServerConnection; peer: RawPeer } {
  const [a, b] = createDuplexPair()
  return { conn: server.serveConnection(a), peer: new RawPeer(b) }
}

export function connectedPair(server: TtrpcServer): { client: TtrpcClient; conn: ServerConnection } {
  const [a, b] = createDuplexPair()
  return { conn: server.serveConnection(a), client: new TtrpcClient(b) }
}

/** A promise with its resolve function, for ordering handler completions in tests. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => { resolve = r })
  return { promise, resolve }
}
