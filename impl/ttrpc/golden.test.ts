// Golden bytes from protocols.md §1.8 (A–D): our encoding must match byte for byte, and we must
// decode the peers' bytes.
import { describe, expect, it } from 'vitest'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { Health, HealthCheckResponse_ServingStatus } from '../gen/health_pb.ts'
import { RequestSchema, ResponseSchema } from '../gen/ttrpc_pb.ts'
import { Code } from '../types/errors.ts'
import { TtrpcError } from './errors.ts'
import { decodeHeader, encodeFrame, FrameDecoder, MessageType } from './frame.ts'
import { TtrpcServer } from './server.ts'
import { clientWithRawPeer, hex, serverWithRawPeer } from './test-support.ts'

const A_REQUEST = hex(`
  00 00 00 14  00 00 00 01  01  00
  0a 0b "grpc.Health"
  12 05 "Check"`)
const A_REPLY = hex('00 00 00 04  00 00 00 01  02  00  12 02 08 01')
const B_REQUEST = hex(`
  00 00 00 1a  00 00 00 01  01  00
  0a 0b "grpc.Health"  12 05 "Check"  20 80 94 eb dc 03`)
const C_REPLY = hex(`
  00 00 00 16  00 00 00 03  02  00
  0a 14  08 0c  12 10 "service grpc.Foo"`)
const D_REQUEST = hex(`
  00 00 00 31 00 00 00 03 01 00
  0a 17 "containerd.task.v2.Task"  12 06 "Delete"  1a 08 0a 06 "probe2"  20 b4 b4 97 d0 12`)

describe('golden literals', () => {
  it('have the lengths protocols.md states', () => {
    expect(A_REQUEST.length).toBe(30)
    expect(B_REQUEST.length).toBe(10 + 26)
    expect(decodeHeader(C_REPLY)).toEqual({ length: 0x16, streamId: 3, type: MessageType.RESPONSE, flags: 0 })
    expect(decodeHeader(D_REQUEST).length).toBe(D_REQUEST.length - 10)
  })
})

describe('A: grpc.Health/Check, stream 1, no deadline', () => {
  it('client encodes the request exactly', async () => {
    const { client, peer } = clientWithRawPeer()
    const call = client.call(Health, 'check', {})
    await peer.until(() => peer.raw.length >= A_REQUEST.length)
    expect(peer.raw.toString('hex')).toBe(A_REQUEST.toString('hex'))
    peer.write(A_REPLY)
    const res = await call
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING)
    await client.close()
  })

  it('server decodes the request and encodes the reply exactly (no status field)', async () => {
    const server = new TtrpcServer().register(Health, { check: async () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) })
    const { conn, peer } = serverWithRawPeer(server)
    peer.write(A_REQUEST)
    await peer.until(() => peer.raw.length >= A_REPLY.length)
    expect(peer.raw.toString('hex')).toBe(A_REPLY.toString('hex'))
    await conn.close()
  })

  it('the envelope codec alone matches too', () => {
    const req = create(RequestSchema, { service: 'grpc.Health', method: 'Check' })
    expect(Buffer.from(encodeFrame({ streamId: 1, type: 1, flags: 0, data: toBinary(RequestSchema, req) })).equals(A_REQUEST)).toBe(true)
    const [item] = new FrameDecoder().push(A_REPLY)
    expect(item?.kind).toBe('frame')
    const resp = fromBinary(ResponseSchema, item?.kind === 'frame' ? item.frame.data : new Uint8Array())
    expect(resp.status).toBeUndefined()
    expect(Buffer.from(resp.payload).toString('hex')).toBe('0801')
  })
})

describe('B: the same call with a 1 s deadline', () => {
  it('client sends timeout_nano = 1e9 exactly', async () => {
    const { client, peer } = clientWithRawPeer()
    const call = client.call(Health, 'check', {}, { timeoutMs: 1000 })
    await peer.until(() => peer.raw.length >= B_REQUEST.length)
    expect(peer.raw.toString('hex')).toBe(B_REQUEST.toString('hex'))
    peer.write(A_REPLY)
    await expect(call).resolves.toMatchObject({ status: HealthCheckResponse_ServingStatus.SERVING })
    await client.close()
  })

  it('server turns it into a deadline for the handler', async () => {
    let deadline: number | undefined
    const server = new TtrpcServer().register(Health, {
      check: async (_req, ctx) => { deadline = ctx.deadline; return { status: 1 } },
    })
    const { conn, peer } = serverWithRawPeer(server)
    const before = Date.now()
    peer.write(B_REQUEST)
    await peer.until(() => peer.raw.length >= A_REPLY.length)
    expect(peer.raw.equals(A_REPLY)).toBe(true)
    expect(deadline).toBeGreaterThanOrEqual(before + 1000)
    expect(deadline).toBeLessThanOrEqual(Date.now() + 1000)
    await conn.close()
  })
})

describe('C: error reply for unknown service grpc.Foo on stream 3', () => {
  it('server encodes status 12 "service grpc.Foo" exactly', async () => {
    const server = new TtrpcServer().register(Health, {})
    const { conn, peer } = serverWithRawPeer(server)
    const req = toBinary(RequestSchema, create(RequestSchema, { service: 'grpc.Foo', method: 'Bar' }))
    peer.write(encodeFrame({ streamId: 3, type: MessageType.REQUEST, flags: 0, data: req }))
    await peer.until(() => peer.raw.length >= C_REPLY.length)
    expect(peer.raw.toString('hex')).toBe(C_REPLY.toString('hex'))
    await conn.close()
  })

  it('client decodes it as a TtrpcError with code 12', async () => {
    const { client, peer } = clientWithRawPeer()
    const first = client.invoke('grpc.Foo', 'Bar', new Uint8Array())
    const second = client.invoke('grpc.Foo', 'Bar', new Uint8Array())
    await peer.frames(2)
    peer.write(A_REPLY)
    peer.write(C_REPLY)
    await expect(first).resolves.toEqual(new Uint8Array([0x08, 0x01]))
    const err = await second.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TtrpcError)
    expect(err).toMatchObject({ code: Code.UNIMPLEMENTED, message: 'service grpc.Foo' })
    await client.close()
  })
})

describe('D: containerd Task/Delete{id:"probe2"} on stream 3 with 4 999 993 908 ns left', () => {
  it('client encodes the request exactly', async () => {
    const { client, peer } = clientWithRawPeer()
    const pending = [
      client.invoke('grpc.Health', 'Check', new Uint8Array()),
      client.invoke('containerd.task.v2.Task', 'Delete', hex('0a 06 "probe2"'), { timeoutMs: 4999.993908 }),
    ]
    await peer.frames(2)
    expect(peer.raw.subarray(A_REQUEST.length).toString('hex')).toBe(D_REQUEST.toString('hex'))
    await client.close()
    await Promise.allSettled(pending)
  })

  it('decodes as a Request and our server answers it on stream 3', async () => {
    const [item] = new FrameDecoder().push(D_REQUEST)
    if (item?.kind !== 'frame') throw new Error('expected a frame')
    expect(item.frame).toMatchObject({ streamId: 3, type: MessageType.REQUEST, flags: 0 })
    const req = fromBinary(RequestSchema, item.frame.data)
    expect(req).toMatchObject({ service: 'containerd.task.v2.Task', method: 'Delete', timeoutNano: 4_999_993_908n })
    expect(Buffer.from(req.payload).toString('hex')).toBe(hex('0a 06 "probe2"').toString('hex'))

    const server = new TtrpcServer().register(Health, {})
    const { conn, peer } = serverWithRawPeer(server)
    peer.write(D_REQUEST)
    const [reply] = await peer.frames(1)
    expect(reply?.streamId).toBe(3)
    expect(fromBinary(ResponseSchema, reply!.data).status).toMatchObject({ code: 12, message: 'service containerd.task.v2.Task' })
    await conn.close()
  })
})
