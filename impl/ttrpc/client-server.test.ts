// Client and server over an in-memory duplex pair (no sockets): multiplexing, deadlines, abort,
// status codes and texts of protocols.md §1.7, close semantics, oversize handling.
import { afterEach, describe, expect, it } from 'vitest'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { AgentService, WaitProcessRequestSchema } from '../gen/agent_pb.ts'
import { Health, HealthCheckResponse_ServingStatus } from '../gen/health_pb.ts'
import { RequestSchema, ResponseSchema } from '../gen/ttrpc_pb.ts'
import { Code, KatarefError } from '../types/errors.ts'
import { createServiceClient, TtrpcClient } from './client.ts'
import { createDuplexPair } from './duplex-pair.ts'
import { CLOSED_MESSAGE, FrameTooLargeError, TtrpcClosedError, TtrpcError } from './errors.ts'
import { encodeFrame, encodeHeader, MAX_MESSAGE_LENGTH, MessageType } from './frame.ts'
import { TtrpcServer } from './server.ts'
import { clientWithRawPeer, connectedPair, deferred, serverWithRawPeer } from './test-support.ts'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((f) => f()))
})

function healthServer(): TtrpcServer {
  return new TtrpcServer().register(Health, {
    check: async () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
    version: async () => ({ agentVersion: 'kataref', grpcVersion: 'ttrpc' }),
  })
}

function pair(server: TtrpcServer): ReturnType<typeof connectedPair> {
  const p = connectedPair(server)
  cleanups.push(() => p.client.close(), () => p.conn.close())
  return p
}

function requestFrame(streamId: number, service: string, method: string, payload = new Uint8Array()): Buffer {
  return encodeFrame({ streamId, type: MessageType.REQUEST, flags: 0, data: toBinary(RequestSchema, create(RequestSchema, { service, method, payload })) })
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => { throw new Error('expected a rejection') }, (e: unknown) => e)
}

describe('calls', () => {
  it('round-trips typed calls and createServiceClient methods', async () => {
    const { client } = pair(healthServer())
    const health = createServiceClient(Health, client)
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING)
    expect(await health.version()).toMatchObject({ agentVersion: 'kataref', grpcVersion: 'ttrpc' })
    expect(client.outstanding).toBe(0)
  })

  it('uses odd stream ids 1, 3, 5 … incrementing by 2', async () => {
    const { client, peer } = clientWithRawPeer()
    cleanups.push(() => client.close())
    const calls = [0, 1, 2, 3].map(() => client.invoke('grpc.Health', 'Check', new Uint8Array()))
    const frames = await peer.frames(4)
    expect(frames.map((f) => f.streamId)).toEqual([1, 3, 5, 7])
    expect(frames.every((f) => f.type === MessageType.REQUEST && f.flags === 0)).toBe(true)
    for (const f of frames.reverse()) peer.sendFrame({ streamId: f.streamId, type: MessageType.RESPONSE, flags: 0, data: new Uint8Array() })
    await Promise.all(calls)
  })

  it('multiplexes concurrent calls whose handlers finish in reverse order', async () => {
    const gates = new Map<string, { promise: Promise<void>; resolve: () => void }>()
    const started = deferred()
    const server = new TtrpcServer().register(AgentService, {
      waitProcess: async (req) => {
        const gate = deferred<void>()
        gates.set(req.containerId, gate)
        if (gates.size === 5) started.resolve()
        await gate.promise
        return { status: Number(req.containerId) }
      },
    })
    const { client } = pair(server)
    const agent = createServiceClient(AgentService, client)
    const order: number[] = []
    const calls = ['1', '2', '3', '4', '5'].map((id) => agent.waitProcess({ containerId: id }).then((r) => { order.push(r.status); return r.status }))
    await started.promise
    for (const id of ['5', '4', '3', '2', '1']) {
      gates.get(id)!.resolve()
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5])
    expect(order).toEqual([5, 4, 3, 2, 1])
  })

  it('accepts a handler reply given as a message, an init object or nothing (Empty)', async () => {
    const server = new TtrpcServer().register(AgentService, {
      waitProcess: async () => create(AgentService.method.waitProcess.output, { status: 7 }),
      startContainer: async () => ({}),
      removeContainer: (async () => undefined) as never,
    })
    const { client } = pair(server)
    const agent = createServiceClient(AgentService, client)
    expect((await agent.waitProcess({})).status).toBe(7)
    await expect(agent.startContainer({ containerId: 'c' })).resolves.toBeDefined()
    await expect(agent.removeContainer({ containerId: 'c' })).resolves.toBeDefined()
  })

  it('passes request fields and metadata to the handler', async () => {
    let seen: unknown
    const server = new TtrpcServer().register(AgentService, {
      signalProcess: async (req, ctx) => { seen = { id: req.containerId, sig: req.signal, md: ctx.metadata, svc: ctx.service, m: ctx.method }; return {} },
    })
    const { client } = pair(server)
    await client.call(AgentService, 'signalProcess', { containerId: 'c1', signal: 9 }, { metadata: { 'x-a': ['1', '2'], 'x-b': '3' } })
    expect(seen).toEqual({ id: 'c1', sig: 9, md: [['x-a', '1'], ['x-a', '2'], ['x-b', '3']], svc: 'grpc.AgentService', m: 'SignalProcess' })
  })

  it('success responses carry no status: zero bytes for Empty, payload only otherwise', async () => {
    const server = new TtrpcServer().register(AgentService, { startContainer: async () => ({}), waitProcess: async () => ({ status: 3 }) })
    const { peer } = serverWithRawPeer(server)
    peer.write(requestFrame(1, 'grpc.AgentService', 'StartContainer'))
    peer.write(requestFrame(3, 'grpc.AgentService', 'WaitProcess'))
    const frames = await peer.frames(2)
    const byId = new Map(frames.map((f) => [f.streamId, f]))
    expect(byId.get(1)!.data.length).toBe(0)
    expect(Buffer.from(byId.get(3)!.data).toString('hex')).toBe('12020803')
    expect(frames.every((f) => f.type === MessageType.RESPONSE && f.flags === 0)).toBe(true)
  })

  it('treats a status present with code 0 as OK', async () => {
    const { client, peer } = clientWithRawPeer()
    cleanups.push(() => client.close())
    const call = client.call(Health, 'check', {})
    await peer.frames(1)
    peer.sendFrame({ streamId: 1, type: MessageType.RESPONSE, flags: 0, data: toBinary(ResponseSchema, create(ResponseSchema, { status: { code: 0, message: '' }, payload: Uint8Array.of(8, 2) })) })
    expect((await call).status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING)
  })
})

describe('errors and status codes', () => {
  it('unknown service → 12 "service <name>", unknown method → 12 "method <name>", and the connection stays usable', async () => {
    const { client } = pair(healthServer())
    const e1 = await rejection(client.invoke('grpc.Nope', 'Check', new Uint8Array()))
    expect(e1).toBeInstanceOf(TtrpcError)
    expect(e1).toMatchObject({ code: Code.UNIMPLEMENTED, message: 'service grpc.Nope' })
    const e2 = await rejection(client.invoke('grpc.Health', 'Watch', new Uint8Array()))
    expect(e2).toMatchObject({ code: Code.UNIMPLEMENTED, message: 'method Watch' })
    const e3 = await rejection(client.call(AgentService, 'createSandbox', { sandboxId: 's' }))
    expect(e3).toMatchObject({ code: Code.UNIMPLEMENTED, message: 'service grpc.AgentService' })
    expect((await client.call(Health, 'check', {})).status).toBe(HealthCheckResponse_ServingStatus.SERVING)
  })

  it('a method of the service missing from impl → 12 "method <WireName>"', async () => {
    const server = new TtrpcServer().register(AgentService, { createSandbox: async () => ({}) })
    const { client } = pair(server)
    const agent = createServiceClient(AgentService, client)
    expect(await rejection(agent.destroySandbox({}))).toMatchObject({ code: 12, message: 'method DestroySandbox' })
    await expect(agent.createSandbox({ hostname: 'h' })).resolves.toBeDefined()
  })

  it('maps handler errors: KatarefError code kept, plain errors → UNKNOWN', async () => {
    const server = new TtrpcServer().register(AgentService, {
      startContainer: async (req) => { throw new KatarefError(`container ${req.containerId} not found`, Code.NOT_FOUND) },
      removeContainer: async () => { throw new Error('boom') },
      pauseContainer: () => { throw new TypeError('sync throw') },
    })
    const { client } = pair(server)
    const agent = createServiceClient(AgentService, client)
    expect(await rejection(agent.startContainer({ containerId: 'c9' }))).toMatchObject({ code: Code.NOT_FOUND, message: 'container c9 not found' })
    expect(await rejection(agent.removeContainer({}))).toMatchObject({ code: Code.UNKNOWN, message: 'boom' })
    expect(await rejection(agent.pauseContainer({}))).toMatchObject({ code: Code.UNKNOWN, message: 'sync throw' })
  })

  it('even stream id → 3 "StreamID must be odd for client initiated streams" on that id', async () => {
    const { peer } = serverWithRawPeer(healthServer())
    peer.write(requestFrame(2, 'grpc.Health', 'Check'))
    peer.write(requestFrame(5, 'grpc.Health', 'Check'))
    const frames = await peer.frames(2)
    const even = frames.find((f) => f.streamId === 2)!
    expect(fromBinary(ResponseSchema, even.data).status).toMatchObject({ code: 3, message: 'StreamID must be odd for client initiated streams' })
    expect(fromBinary(ResponseSchema, frames.find((f) => f.streamId === 5)!.data).status).toBeUndefined()
  })

  it('undecodable Request → 3 "unmarshal request error: …"', async () => {
    const { peer } = serverWithRawPeer(healthServer())
    peer.sendFrame({ streamId: 1, type: MessageType.REQUEST, flags: 0, data: Uint8Array.of(0x0a, 0x05, 0x61) })
    const [f] = await peer.frames(1)
    const status = fromBinary(ResponseSchema, f!.data).status
    expect(status?.code).toBe(3)
    expect(status?.message).toMatch(/^unmarshal request error: .+/)
  })

  it('undecodable payload → 13 "ttrpc: error unmarshalling payload: …"', async () => {
    const { peer } = serverWithRawPeer(healthServer())
    peer.write(requestFrame(1, 'grpc.Health', 'Check', Uint8Array.of(0x0a, 0x7f)))
    const [f] = await peer.frames(1)
    expect(fromBinary(ResponseSchema, f!.data).status?.message).toMatch(/^ttrpc: error unmarshalling payload: /)
    expect(fromBinary(ResponseSchema, f!.data).status?.code).toBe(13)
  })

  it('ignores non-request frame types', async () => {
    const { peer } = serverWithRawPeer(healthServer())
    peer.sendFrame({ streamId: 1, type: MessageType.DATA, flags: 0, data: Uint8Array.of(1, 2, 3) })
    peer.sendFrame({ streamId: 1, type: MessageType.RESPONSE, flags: 0, data: new Uint8Array() })
    peer.sendFrame({ streamId: 1, type: 0x7f, flags: 0xff, data: new Uint8Array() })
    peer.write(requestFrame(3, 'grpc.Health', 'Check'))
    await peer.frames(1)
    await new Promise((r) => setTimeout(r, 20))
    expect(peer.items.map((i) => (i.kind === 'frame' ? i.frame.streamId : -1))).toEqual([3])
  })

  it('registering the same service twice, or an unknown method name, throws', () => {
    const server = healthServer()
    expect(() => server.register(Health, {})).toThrow(/already registered/)
    expect(() => new TtrpcServer().register(Health, { watch: async () => ({}) } as never)).toThrow(/no method watch/)
  })
})

describe('deadlines and cancellation', () => {
  it('timeout: sends timeout_nano, rejects locally with DEADLINE_EXCEEDED, drops the late response', async () => {
    const release = deferred()
    let ctxDeadline: number | undefined
    let abortedReason: unknown
    const server = new TtrpcServer().register(AgentService, {
      waitProcess: async (_req, ctx) => {
        ctxDeadline = ctx.deadline
        ctx.signal.addEventListener('abort', () => { abortedReason = ctx.signal.reason })
        await release.promise
        return { status: 1 }
      },
    })
    const { client, conn } = pair(server)
    const t0 = Date.now()
    const err = await rejection(client.call(AgentService, 'waitProcess', {}, { timeoutMs: 60 }))
    expect(err).toBeInstanceOf(TtrpcError)
    expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55)
    expect(ctxDeadline).toBeGreaterThan(t0)
    await new Promise((r) => setTimeout(r, 20))
    expect(abortedReason).toMatchObject({ code: Code.DEADLINE_EXCEEDED })
    expect(client.outstanding).toBe(0)
    release.resolve()
    await new Promise((r) => setTimeout(r, 20))
    expect(conn.activeCalls).toBe(0)
    expect((await client.call(AgentService, 'waitProcess', {})).status).toBe(1)
  })

  it('rejects a non-positive timeoutMs without sending', async () => {
    const { client, peer } = clientWithRawPeer()
    cleanups.push(() => client.close())
    expect(await rejection(client.call(Health, 'check', {}, { timeoutMs: 0 }))).toMatchObject({ code: Code.INVALID_ARGUMENT })
    expect(peer.raw.length).toBe(0)
  })

  it('abort: a pre-aborted signal sends nothing; aborting mid-call rejects with CANCELLED and forgets the stream', async () => {
    const { client, peer } = clientWithRawPeer()
    cleanups.push(() => client.close())
    expect(await rejection(client.call(Health, 'check', {}, { signal: AbortSignal.abort() }))).toMatchObject({ code: Code.CANCELLED })
    expect(peer.raw.length).toBe(0)
    const ac = new AbortController()
    const call = client.call(Health, 'check', {}, { signal: ac.signal })
    await peer.frames(1)
    ac.abort(new Error('user gave up'))
    const err = await rejection(call)
    expect(err).toMatchObject({ code: Code.CANCELLED })
    expect((err as Error).cause).toMatchObject({ message: 'user gave up' })
    expect(client.outstanding).toBe(0)
    // A late response for the forgotten stream is dropped; the next call still works on stream 3.
    peer.sendFrame({ streamId: 1, type: MessageType.RESPONSE, flags: 0, data: new Uint8Array() })
    const next = client.call(Health, 'check', {})
    const frames = await peer.frames(2)
    expect(frames[1]!.streamId).toBe(3)
    peer.sendFrame({ streamId: 3, type: MessageType.RESPONSE, flags: 0, data: Uint8Array.of(0x12, 0x02, 0x08, 0x01) })
    expect((await next).status).toBe(1)
  })
})

describe('close', () => {
  it('closing the server side mid-call rejects outstanding calls with "ttrpc: closed" and aborts handlers', async () => {
    let handlerSignal: AbortSignal | undefined
    const entered = deferred()
    const server = new TtrpcServer().register(AgentService, {
      waitProcess: async (_req, ctx) => { handlerSignal = ctx.signal; entered.resolve(); return new Promise(() => {}) },
    })
    const { client, conn } = pair(server)
    const calls = [client.call(AgentService, 'waitProcess', {}), client.call(AgentService, 'waitProcess', {})]
    await entered.promise
    await conn.close()
    for (const c of calls) {
      const err = await rejection(c)
      expect(err).toBeInstanceOf(TtrpcClosedError)
      expect(err).toMatchObject({ message: CLOSED_MESSAGE, code: Code.UNAVAILABLE })
    }
    await client.closed
    expect(client.isClosed).toBe(true)
    expect(handlerSignal?.aborted).toBe(true)
    expect(await rejection(client.call(Health, 'check', {}))).toBeInstanceOf(TtrpcClosedError)
  })

  it('client.close() rejects outstanding calls, is idempotent, and resolves closed', async () => {
    const { client, peer } = clientWithRawPeer()
    const call = client.call(Health, 'check', {})
    await peer.frames(1)
    await Promise.all([client.close(), client.close()])
    await client.close()
    expect(await rejection(call)).toMatchObject({ message: 'ttrpc: closed' })
    await client.closed
    await peer.until(() => peer.ended)
  })

  it('a raw duplex ending mid-call rejects with the closed error', async () => {
    const [a, b] = createDuplexPair()
    const client = new TtrpcClient(a)
    b.on('data', () => {})
    const call = client.call(Health, 'check', {})
    b.end()
    expect(await rejection(call)).toBeInstanceOf(TtrpcClosedError)
  })
})

describe('oversize messages', () => {
  it('server skips an oversize frame, replies 8 on that id, and the connection survives', async () => {
    const { peer } = serverWithRawPeer(healthServer())
    const n = MAX_MESSAGE_LENGTH + 1
    peer.write(encodeHeader({ length: n, streamId: 5, type: MessageType.REQUEST, flags: 0 }))
    peer.write(Buffer.alloc(n, 0x0a))
    peer.write(requestFrame(7, 'grpc.Health', 'Check'))
    const frames = await peer.frames(2)
    const byId = new Map(frames.map((f) => [f.streamId, fromBinary(ResponseSchema, f.data)]))
    expect(byId.get(5)?.status).toMatchObject({ code: 8, message: `message length ${n} exceed maximum message size of 4194304` })
    expect(byId.get(7)?.status).toBeUndefined()
    expect(Buffer.from(byId.get(7)!.payload).toString('hex')).toBe('0801')
  })

  it('server answers 8 instead of sending a reply larger than 4 MiB', async () => {
    const server = new TtrpcServer().register(AgentService, {
      readStdout: async () => ({ data: new Uint8Array(MAX_MESSAGE_LENGTH) }),
      writeStdin: async (req) => ({ len: req.data.length }),
    })
    const { client } = pair(server)
    const err = await rejection(client.call(AgentService, 'readStdout', {}))
    expect(err).toMatchObject({ code: Code.RESOURCE_EXHAUSTED })
    expect((err as Error).message).toMatch(/^message length \d+ exceed maximum message size of 4194304$/)
    expect((await client.call(AgentService, 'writeStdin', { data: new Uint8Array(10) })).len).toBe(10)
  })

  it('client refuses to send a request larger than 4 MiB and stays usable', async () => {
    const server = new TtrpcServer().register(AgentService, { writeStdin: async (req) => ({ len: req.data.length }) })
    const { client } = pair(server)
    const err = await rejection(client.call(AgentService, 'writeStdin', { data: new Uint8Array(MAX_MESSAGE_LENGTH) }))
    expect(err).toBeInstanceOf(FrameTooLargeError)
    expect(err).toMatchObject({ code: 8, maxLength: MAX_MESSAGE_LENGTH })
    expect((await client.call(AgentService, 'writeStdin', { data: new Uint8Array(3) })).len).toBe(3)
  })

  it('client rejects the call whose response frame is oversize, then keeps working', async () => {
    const { client, peer } = clientWithRawPeer()
    cleanups.push(() => client.close())
    const first = client.call(Health, 'check', {})
    const second = client.call(Health, 'check', {})
    await peer.frames(2)
    const n = MAX_MESSAGE_LENGTH + 10
    peer.write(encodeHeader({ length: n, streamId: 1, type: MessageType.RESPONSE, flags: 0 }))
    peer.write(Buffer.alloc(n))
    peer.sendFrame({ streamId: 3, type: MessageType.RESPONSE, flags: 0, data: Uint8Array.of(0x12, 0x02, 0x08, 0x01) })
    expect(await rejection(first)).toMatchObject({ rejectedLength: n, code: 8 })
    expect((await second).status).toBe(1)
  })
})

describe('typed request encoding', () => {
  it('encodes the method input message as the Request payload', async () => {
    const { client, peer } = clientWithRawPeer()
    cleanups.push(() => client.close())
    void client.call(AgentService, 'waitProcess', { containerId: 'c', execId: 'e' }).catch(() => {})
    const [f] = await peer.frames(1)
    const req = fromBinary(RequestSchema, f!.data)
    expect(req).toMatchObject({ service: 'grpc.AgentService', method: 'WaitProcess', timeoutNano: 0n })
    expect(fromBinary(WaitProcessRequestSchema, req.payload)).toMatchObject({ containerId: 'c', execId: 'e' })
  })
})
