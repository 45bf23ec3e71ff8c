// A ttrpc channel: frames in and out of any Node Duplex (unix socket, vsock bridge, virtio-serial fd,
// in-memory pair). Each frame is written with one write() call, so frames never interleave.
import type { Duplex } from 'node:stream'
import type { Logger } from '../types/logger.ts'
import { FrameDecoder, encodeFrame, type Frame, type FrameHeader } from './frame.ts'
import type { FrameTooLargeError } from './errors.ts'

export interface ChannelHandlers {
  onFrame(frame: Frame): void
  /** A peer announced a frame longer than the maximum; its data is being skipped. */
  onOversize(header: FrameHeader, error: FrameTooLargeError): void
  /** Called once, when the channel is closed by either side (`error` if the stream failed). */
  onClose(error?: Error): void
}

export class Channel {
  private readonly decoder = new FrameDecoder()
  private _closed = false
  private readonly closedPromise: Promise<void>
  private resolveClosed!: () => void

  constructor(private readonly duplex: Duplex, private readonly handlers: ChannelHandlers, private readonly logger: Logger) {
    this.closedPromise = new Promise((resolve) => { this.resolveClosed = resolve })
    duplex.on('data', (chunk: Buffer) => this.onData(chunk))
    // A stream handed over paused (a dialer that read a handshake line first) must flow now:
    // a 'data' listener alone does not resume an explicitly paused stream.
    duplex.resume()
    duplex.on('end', () => this.shutdown())
    duplex.on('close', () => this.shutdown())
    duplex.on('error', (err: Error) => this.shutdown(err))
    if (duplex.destroyed) queueMicrotask(() => this.shutdown())
  }

  get isClosed(): boolean {
    return this._closed
  }

  /** Resolves once the channel is closed; never rejects. */
  get closed(): Promise<void> {
    return this.closedPromise
  }

  /** Writes one frame contiguously. Throws FrameTooLargeError (nothing is written) for oversize data. */
  send(frame: Frame): void {
    const bytes = encodeFrame(frame)
    if (this._closed) return
    this.duplex.write(bytes)
  }

  close(): void {
    this.shutdown()
  }

  private onData(chunk: Buffer): void {
    if (this._closed) return
    for (const item of this.decoder.push(chunk)) {
      if (this._closed) return
      if (item.kind === 'frame') this.handlers.onFrame(item.frame)
      else this.handlers.onOversize(item.header, item.error)
    }
  }

  private shutdown(error?: Error): void {
    if (this._closed) return
    this._closed = true
    if (error) this.logger.debug({ err: error }, 'ttrpc channel error')
    if (!this.decoder.idle) this.logger.debug({ pendingBytes: this.decoder.pendingBytes }, 'ttrpc channel closed inside a frame')
    this.duplex.destroy()
    try {
      this.handlers.onClose(error)
    } finally {
      this.resolveClosed()
    }
  }
}
