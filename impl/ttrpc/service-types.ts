// Types shared by client and server: method names, request/response shapes from generated services,
// call options and the handler context.
import type { DescMessage, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf'

/** Ordered key/value pairs (a key may repeat), as in ttrpc.Request.metadata. */
export type Metadata = ReadonlyArray<readonly [key: string, value: string]>

/** Method local names of a service (`createSandbox`), typed from a generated GenService. */
export type MethodName<S extends DescService> = Extract<keyof S['method'], string>

type InputOf<S extends DescService, K extends MethodName<S>> = S['method'][K] extends { input: infer I extends DescMessage } ? I : DescMessage
type OutputOf<S extends DescService, K extends MethodName<S>> = S['method'][K] extends { output: infer O extends DescMessage } ? O : DescMessage

export type RequestShape<S extends DescService, K extends MethodName<S>> = MessageShape<InputOf<S, K>>
export type RequestInit<S extends DescService, K extends MethodName<S>> = MessageInitShape<InputOf<S, K>> | MessageShape<InputOf<S, K>>
export type ResponseShape<S extends DescService, K extends MethodName<S>> = MessageShape<OutputOf<S, K>>
export type ResponseInit<S extends DescService, K extends MethodName<S>> = MessageInitShape<OutputOf<S, K>> | MessageShape<OutputOf<S, K>>

export interface CallOptions {
  /** Relative deadline: sent as timeout_nano, and the call rejects locally with DEADLINE_EXCEEDED when it passes. */
  timeoutMs?: number
  /** Aborting forgets the stream and rejects the call with CANCELLED (ttrpc has no cancel frame). */
  signal?: AbortSignal
  metadata?: Metadata | Readonly<Record<string, string | readonly string[]>>
}

export interface CallContext {
  /** Fully qualified service name, e.g. `grpc.AgentService`. */
  service: string
  /** Wire method name, e.g. `CreateSandbox`. */
  method: string
  metadata: Metadata
  /** Absolute deadline (ms since the epoch, like Date.now()) when the caller sent timeout_nano. */
  deadline?: number
  /** Aborted when the deadline passes or the connection closes. */
  signal: AbortSignal
}

export type MethodHandler<S extends DescService, K extends MethodName<S>> = (
  req: RequestShape<S, K>,
  ctx: CallContext,
) => Promise<ResponseInit<S, K>> | ResponseInit<S, K>

/** Handlers keyed by method local name; register() takes a Partial of this. */
export type ServiceImpl<S extends DescService> = { [K in MethodName<S>]: MethodHandler<S, K> }

/** The object createServiceClient() returns: one async method per local name. */
export type ServiceClient<S extends DescService> = {
  [K in MethodName<S>]: (req?: RequestInit<S, K>, opts?: CallOptions) => Promise<ResponseShape<S, K>>
}

export function normalizeMetadata(md: CallOptions['metadata']): Array<[string, string]> {
  if (!md) return []
  if (Array.isArray(md)) return (md as Metadata).map(([k, v]) => [k, v])
  const out: Array<[string, string]> = []
  for (const [k, v] of Object.entries(md as Record<string, string | readonly string[]>)) {
    if (typeof v === 'string') out.push([k, v])
    else for (const one of v) out.push([k, one])
  }
  return out
}
