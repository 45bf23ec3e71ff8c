// ttrpc client (protocols.md §1): odd stream ids 1, 3, 5…, many calls multiplexed on one connection,
// responses matched by stream id in any order. Unary only.
import type { Duplex } from 'node:stream'
import { create, fromBinary, isMessage, toBinary, type DescService } from '@bufbuild/protobuf'
import { RequestSchema, ResponseSchema } from '../gen/ttrpc_pb.ts'
import { Code, KatarefError, errorMessage } from '../types/errors.ts'
import { nullLogger, type Logger } from '../types/logger.ts'
import { Channel } from './channel.ts'
import { toCode } from './codes.ts'
import { TtrpcClosedError, TtrpcError } from './errors.ts'
import { Flag, MessageType, type Frame, type FrameHeader } from './frame.ts'
import { normalizeMetadata, type CallOptions, type MethodName, type RequestInit, type ResponseShape, type ServiceClient } from './service-types.ts'
import type { FrameTooLargeError } from './errors.ts'

export interface TtrpcClientOptions {
  logger?: Logger
}

const MAX_STREAM_ID = 0xffff_ffff

interface PendingCall {
  resolve(payload: Uint8Array): void
  reject(err: Error): void
}

export class TtrpcClient {
  private readonly channel: Channel
  private readonly logger: Logger
  private readonly pending = new Map<number, PendingCall>()
  private nextStreamId = 1

  constructor(duplex: Duplex, opts: TtrpcClientOptions = {}) {
    this.logger = (opts.logger ?? nullLogger).child({ component: 'ttrpc-client' })
    this.channel = new Channel(duplex, {
      onFrame: (f) => this.onFrame(f),
      onOversize: (h, e) => this.onOversize(h, e),
      onClose: () => this.onClose(),
    }, this.logger)
  }

  /** Resolves when the connection is closed (by close() or by the peer); never rejects. */
  get closed(): Promise<void> {
    return this.channel.closed
  }

  get isClosed(): boolean {
    return this.channel.isClosed
  }

  /** Number of calls waiting for a response. */
  get outstanding(): number {
    return this.pending.size
  }

  /** Closes the connection; outstanding calls reject with TtrpcClosedError. Idempotent. */
  close(): Promise<void> {
    this.channel.close()
    return this.closed
  }

  /** Typed unary call: `client.call(AgentService, 'createSandbox', { sandboxId })`. */
  async call<S extends DescService, K extends MethodName<S>>(
    service: S,
    method: K,
    request: RequestInit<S, K>,
    opts: CallOptions = {},
  ): Promise<ResponseShape<S, K>> {
    const desc = service.method[method]
    if (!desc) throw new KatarefError(`ttrpc: ${service.typeName} has no method ${method}`, Code.INVALID_ARGUMENT, { service: service.typeName, method })
    if (desc.methodKind !== 'unary') {
      throw new KatarefError(`ttrpc: ${service.typeName}/${desc.name} is ${desc.methodKind}; only unary calls are supported`, Code.UNIMPLEMENTED)
    }
    const msg = isMessage(request, desc.input) ? request : create(desc.input, request as never)
    const reply = await this.invoke(service.typeName, desc.name, toBinary(desc.input, msg), opts)
    try {
      return fromBinary(desc.output, reply) as ResponseShape<S, K>
    } catch (e) {
      throw new TtrpcError(Code.INTERNAL, `ttrpc: error unmarshalling ${desc.output.typeName}: ${errorMessage(e)}`, { service: service.typeName, method: desc.name }, { cause: e })
    }
  }

  /** Untyped unary call with raw payload bytes, e.g. for conformance probes of unknown services. */
  invoke(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const context = { service, method }
    if (this.channel.isClosed) return Promise.reject(new TtrpcClosedError(context))
    if (opts.signal?.aborted) return Promise.reject(cancelled(service, method, opts.signal.reason))
    if (this.nextStreamId > MAX_STREAM_ID) {
      return Promise.reject(new TtrpcError(Code.RESOURCE_EXHAUSTED, 'ttrpc: stream ids exhausted; open a new connection', context))
    }
    const timeoutMs = opts.timeoutMs
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      return Promise.reject(new KatarefError(`ttrpc: timeoutMs must be a positive number, got ${timeoutMs}`, Code.INVALID_ARGUMENT, context))
    }
    const streamId = this.nextStreamId
    const req = create(RequestSchema, {
      service,
      method,
      payload,
      timeoutNano: timeoutMs === undefined ? 0n : BigInt(Math.round(timeoutMs * 1e6)),
      metadata: normalizeMetadata(opts.metadata).map(([key, value]) => ({ key, value })),
    })
    const data = toBinary(RequestSchema, req)

    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const onAbort = (): void => settle(() => reject(cancelled(service, method, opts.signal?.reason)))
      const settle = (fn: () => void): void => {
        if (!this.pending.delete(streamId)) return
        if (timer) clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        fn()
      }
      this.pending.set(streamId, {
        resolve: (p) => settle(() => resolve(p)),
        reject: (e) => settle(() => reject(e)),
      })
      try {
        this.channel.send({ streamId, type: MessageType.REQUEST, flags: Flag.NONE, data })
      } catch (e) {
        settle(() => reject(e))
        return
      }
      this.nextStreamId += 2
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => settle(() => reject(new TtrpcError(
          Code.DEADLINE_EXCEEDED, `ttrpc: ${service}/${method}: deadline of ${timeoutMs} ms exceeded`, { ...context, streamId, timeoutMs },
        ))), timeoutMs)
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private onFrame(f: Frame): void {
    const call = this.pending.get(f.streamId)
    if (!call) {
      this.logger.debug({ streamId: f.streamId, type: f.type }, 'ttrpc: dropping frame for unknown stream')
      return
    }
    if (f.type !== MessageType.RESPONSE) {
      call.reject(new TtrpcError(Code.INTERNAL, `ttrpc: unknown message type ${f.type} received`, { streamId: f.streamId }))
      return
    }
    let resp
    try {
      resp = fromBinary(ResponseSchema, f.data)
    } catch (e) {
      call.reject(new TtrpcError(Code.INTERNAL, `ttrpc: error unmarshalling response: ${errorMessage(e)}`, { streamId: f.streamId }, { cause: e }))
      return
    }
    if (resp.status && resp.status.code !== Code.OK) {
      call.reject(new TtrpcError(toCode(resp.status.code), resp.status.message, { streamId: f.streamId, wireCode: resp.status.code }))
      return
    }
    call.resolve(resp.payload)
  }

  private onOversize(h: FrameHeader, err: FrameTooLargeError): void {
    const call = this.pending.get(h.streamId)
    if (call) call.reject(err)
    else this.logger.debug({ streamId: h.streamId, length: h.length }, 'ttrpc: dropping oversize frame for unknown stream')
  }

  private onClose(): void {
    const calls = [...this.pending.values()]
    for (const call of calls) call.reject(new TtrpcClosedError())
  }
}

function cancelled(service: string, method: string, reason: unknown): TtrpcError {
  return new TtrpcError(Code.CANCELLED, `ttrpc: ${service}/${method}: call cancelled`, { service, method }, { cause: reason })
}

/** One async method per local name: `createServiceClient(AgentService, client).createSandbox(req, opts)`. */
export function createServiceClient<S extends DescService>(service: S, client: TtrpcClient): ServiceClient<S> {
  const out: Record<string, unknown> = {}
  for (const m of service.methods) {
    out[m.localName] = (req?: unknown, opts?: CallOptions) => client.call(service, m.localName as MethodName<S>, (req ?? {}) as never, opts)
  }
  return out as ServiceClient<S>
}
