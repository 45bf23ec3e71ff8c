// ttrpc framing (protocols.md §1.2, §1.3): a 10-byte big-endian header + data. Knows only bytes.
import { FrameTooLargeError } from './errors.ts'

export { FrameTooLargeError }

export const HEADER_LENGTH = 10
/** Maximum data length N: 4 MiB (`4 << 20`). */
export const MAX_MESSAGE_LENGTH = 4 << 20

export const MessageType = {
  REQUEST: 0x01,
  RESPONSE: 0x02,
  DATA: 0x03,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

export const Flag = {
  NONE: 0x00,
  REMOTE_CLOSED: 0x01,
  REMOTE_OPEN: 0x02,
  NO_DATA: 0x04,
} as const

export interface FrameHeader {
  /** Data length N (header not counted). */
  length: number
  streamId: number
  /** Message type byte; any value 0–255 may arrive. */
  type: number
  flags: number
}

export interface Frame {
  streamId: number
  type: number
  flags: number
  data: Uint8Array
}

export function encodeHeader(h: FrameHeader): Buffer {
  const b = Buffer.allocUnsafe(HEADER_LENGTH)
  b.writeUInt32BE(h.length, 0)
  b.writeUInt32BE(h.streamId, 4)
  b.writeUInt8(h.type, 8)
  b.writeUInt8(h.flags, 9)
  return b
}

export function decodeHeader(b: Uint8Array): FrameHeader {
  const view = new DataView(b.buffer, b.byteOffset, HEADER_LENGTH)
  return { length: view.getUint32(0), streamId: view.getUint32(4), type: view.getUint8(8), flags: view.getUint8(9) }
}

/** One contiguous buffer (header + data). Throws FrameTooLargeError when data exceeds `maxLength`. */
export function encodeFrame(f: Frame, maxLength = MAX_MESSAGE_LENGTH): Buffer {
  if (f.data.length > maxLength) throw new FrameTooLargeError(f.data.length, maxLength, { streamId: f.streamId })
  const out = Buffer.allocUnsafe(HEADER_LENGTH + f.data.length)
  encodeHeader({ length: f.data.length, streamId: f.streamId, type: f.type, flags: f.flags }).copy(out, 0)
  out.set(f.data, HEADER_LENGTH)
  return out
}

/** What the decoder yields: a whole frame, or an oversize header whose data it is skipping. */
export type DecodedItem =
  | { kind: 'frame'; frame: Frame }
  | { kind: 'oversize'; header: FrameHeader; error: FrameTooLargeError }

export interface FrameDecoderOptions {
  maxLength?: number
  /** Allocates a frame's data buffer; injectable so tests can prove oversize frames never allocate. */
  allocate?: (length: number) => Uint8Array
}

/**
 * Streaming decoder: accepts arbitrary chunking. An oversize header is reported as soon as it is
 * read, before anything is allocated for it, and its N data bytes are then skipped (Go ttrpc
 * behaviour), so the stream stays in sync and the connection survives.
 */
export class FrameDecoder {
  private readonly maxLength: number
  private readonly allocate: (length: number) => Uint8Array
  private readonly header = new Uint8Array(HEADER_LENGTH)
  private headerFilled = 0
  private current: { header: FrameHeader; data: Uint8Array; filled: number } | undefined
  private skipRemaining = 0

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxLength = opts.maxLength ?? MAX_MESSAGE_LENGTH
    this.allocate = opts.allocate ?? ((n) => new Uint8Array(n))
  }

  /** Bytes of an incomplete frame currently held (header bytes + data bytes received so far). */
  get pendingBytes(): number {
    return this.headerFilled + (this.current?.filled ?? 0)
  }

  /** True between frames: nothing partial is held and nothing is being skipped. */
  get idle(): boolean {
    return this.headerFilled === 0 && this.current === undefined && this.skipRemaining === 0
  }

  push(chunk: Uint8Array): DecodedItem[] {
    const out: DecodedItem[] = []
    let off = 0
    while (off < chunk.length) {
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, chunk.length - off)
        this.skipRemaining -= n
        off += n
        continue
      }
      if (this.current) {
        const cur = this.current
        const n = Math.min(cur.data.length - cur.filled, chunk.length - off)
        cur.data.set(chunk.subarray(off, off + n), cur.filled)
        cur.filled += n
        off += n
        if (cur.filled === cur.data.length) {
          this.current = undefined
          out.push({ kind: 'frame', frame: { streamId: cur.header.streamId, type: cur.header.type, flags: cur.header.flags, data: cur.data } })
        }
        continue
      }
      const n = Math.min(HEADER_LENGTH - this.headerFilled, chunk.length - off)
      this.header.set(chunk.subarray(off, off + n), this.headerFilled)
      this.headerFilled += n
      off += n
      if (this.headerFilled === HEADER_LENGTH) {
        this.headerFilled = 0
        this.startFrame(decodeHeader(this.header), out)
      }
    }
    return out
  }

  private startFrame(header: FrameHeader, out: DecodedItem[]): void {
    if (header.length > this.maxLength) {
      this.skipRemaining = header.length
      out.push({ kind: 'oversize', header, error: new FrameTooLargeError(header.length, this.maxLength, { streamId: header.streamId }) })
      return
    }
    const data = this.allocate(header.length)
    if (header.length === 0) {
      out.push({ kind: 'frame', frame: { streamId: header.streamId, type: header.type, flags: header.flags, data } })
      return
    }
    this.current = { header, data, filled: 0 }
  }
}
