// One accepted connection on the server side: decodes requests, runs handlers concurrently and
// answers on the request's stream id (protocols.md §1.4, §1.5, §1.7).
import type { Duplex } from 'node:stream'
import { create, fromBinary, isMessage, toBinary, type DescMethod, type DescService, type Message } from '@bufbuild/protobuf'
import { RequestSchema, ResponseSchema, type Request } from '../gen/ttrpc_pb.ts'
import { Code, errorMessage } from '../types/errors.ts'
import type { Logger } from '../types/logger.ts'
import { Channel } from './channel.ts'
import { codeName } from './codes.ts'
import { FrameTooLargeError, TtrpcClosedError, TtrpcError, toStatus } from './errors.ts'
import { Flag, MAX_MESSAGE_LENGTH, MessageType, type Frame, type FrameHeader } from './frame.ts'
import type { CallContext, Metadata } from './service-types.ts'

export type AnyHandler = (req: Message, ctx: CallContext) => unknown

export interface RegisteredService {
  readonly service: DescService
  /** Handlers keyed by method local name. */
  readonly impl: Readonly<Record<string, AnyHandler | undefined>>
  /** Methods keyed by wire name (`CreateSandbox`). */
  readonly byWireName: ReadonlyMap<string, DescMethod>
}

export interface ServiceLookup {
  lookup(serviceName: string): RegisteredService | undefined
}

/** Longest timer Node accepts; a longer deadline is kept in ctx.deadline but not armed. */
const MAX_TIMER_MS = 0x7fff_ffff

export class ServerConnection {
  private readonly channel: Channel
  private readonly inflight = new Set<AbortController>()

  constructor(duplex: Duplex, private readonly services: ServiceLookup, private readonly logger: Logger) {
    this.channel = new Channel(duplex, {
      onFrame: (f) => this.onFrame(f),
      onOversize: (h, e) => this.onOversize(h, e),
      onClose: () => this.onClose(),
    }, logger)
  }

  /** Resolves once the connection is closed; never rejects. */
  get closed(): Promise<void> {
    return this.channel.closed
  }

  get isClosed(): boolean {
    return this.channel.isClosed
  }

  /** Handlers still running. */
  get activeCalls(): number {
    return this.inflight.size
  }

  /** Closes the connection; running handlers see ctx.signal aborted and their replies are dropped. Idempotent. */
  close(): Promise<void> {
    this.channel.close()
    return this.closed
  }

  private onFrame(f: Frame): void {
    if (f.type !== MessageType.REQUEST) {
      this.logger.debug({ streamId: f.streamId, type: f.type }, 'ttrpc: ignoring non-request frame')
      return
    }
    if (f.streamId % 2 !== 1) {
      this.sendStatus(f.streamId, Code.INVALID_ARGUMENT, 'StreamID must be odd for client initiated streams')
      return
    }
    let req: Request
    try {
      req = fromBinary(RequestSchema, f.data)
    } catch (e) {
      this.sendStatus(f.streamId, Code.INVALID_ARGUMENT, `unmarshal request error: ${errorMessage(e)}`)
      return
    }
    void this.dispatch(f.streamId, req)
  }

  private onOversize(h: FrameHeader, err: FrameTooLargeError): void {
    this.logger.debug({ streamId: h.streamId, length: h.length }, 'ttrpc: oversize frame skipped')
    this.sendStatus(h.streamId, err.code, err.message)
  }

  private onClose(): void {
    for (const ac of this.inflight) ac.abort(new TtrpcClosedError())
  }

  private async dispatch(streamId: number, req: Request): Promise<void> {
    const registered = this.services.lookup(req.service)
    if (!registered) {
      this.sendStatus(streamId, Code.UNIMPLEMENTED, `service ${req.service}`)
      return
    }
    const method = registered.byWireName.get(req.method)
    const handler = method ? registered.impl[method.localName] : undefined
    if (!method || !handler || method.methodKind !== 'unary') {
      this.sendStatus(streamId, Code.UNIMPLEMENTED, `method ${req.method}`)
      return
    }
    let input: Message
    try {
      input = fromBinary(method.input, req.payload)
    } catch (e) {
      this.sendStatus(streamId, Code.INTERNAL, `ttrpc: error unmarshalling payload: ${errorMessage(e)}`)
      return
    }

    const ac = new AbortController()
    const ctx: CallContext = {
      service: req.service,
      method: req.method,
      metadata: req.metadata.map((kv) => [kv.key, kv.value] as const) as Metadata,
      signal: ac.signal,
    }
    let timer: NodeJS.Timeout | undefined
    if (req.timeoutNano > 0n) {
      const ms = Number(req.timeoutNano / 1_000_000n)
      ctx.deadline = Date.now() + ms
      if (ms <= MAX_TIMER_MS) {
        timer = setTimeout(() => ac.abort(new TtrpcError(Code.DEADLINE_EXCEEDED, `${req.service}/${req.method}: deadline exceeded`)), ms)
        timer.unref()
      }
    }
    this.inflight.add(ac)
    const log = this.logger.child({ streamId, service: req.service, method: req.method })
    try {
      const reply = await handler(input, ctx)
      if (this.channel.isClosed) return
      const out = reply == null ? create(method.output) : isMessage(reply, method.output) ? reply : create(method.output, reply as never)
      this.sendPayload(streamId, toBinary(method.output, out))
    } catch (e) {
      const status = toStatus(e)
      log.debug({ err: e, code: codeName(status.code) }, 'ttrpc: handler failed')
      this.sendStatus(streamId, status.code, status.message)
    } finally {
      if (timer) clearTimeout(timer)
      this.inflight.delete(ac)
    }
  }

  /** Success: payload only, no status field (zero bytes for an empty reply), as Go ttrpc does. */
  private sendPayload(streamId: number, payload: Uint8Array): void {
    const data = toBinary(ResponseSchema, create(ResponseSchema, { payload }))
    if (data.length > MAX_MESSAGE_LENGTH) {
      const err = new FrameTooLargeError(data.length, MAX_MESSAGE_LENGTH, { streamId })
      this.sendStatus(streamId, err.code, err.message)
      return
    }
    this.send(streamId, data)
  }

  private sendStatus(streamId: number, code: Code, message: string): void {
    this.send(streamId, toBinary(ResponseSchema, create(ResponseSchema, { status: { code, message } })))
  }

  private send(streamId: number, data: Uint8Array): void {
    try {
      this.channel.send({ streamId, type: MessageType.RESPONSE, flags: Flag.NONE, data })
    } catch (e) {
      // Only a status message longer than 4 MiB could get here.
      this.logger.warn({ err: e, streamId }, 'ttrpc: could not send response')
    }
  }
}
