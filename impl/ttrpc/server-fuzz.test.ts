// A server fed random bytes never crashes: every frame it sends back is a well-formed Response
// whose status (if any) carries a known code (fast-check, 1,000 runs).
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { Health } from '../gen/health_pb.ts'
import { RequestSchema, ResponseSchema } from '../gen/ttrpc_pb.ts'
import { Code } from '../types/errors.ts'
import { encodeFrame, MessageType } from './frame.ts'
import { TtrpcServer } from './server.ts'
import { serverWithRawPeer } from './test-support.ts'

const KNOWN_CODES = new Set<number>(Object.values(Code))

describe('server robustness', () => {
  it('random frames and garbage produce only well-formed responses on the ids they name', async () => {
    const server = new TtrpcServer().register(Health, { check: async () => ({ status: 1 }) })
    const requestish = fc.record({
      streamId: fc.nat({ max: 0xffff_ffff }),
      type: fc.constantFrom(1, 1, 1, 2, 3, 0, 255),
      flags: fc.nat({ max: 255 }),
      data: fc.oneof(
        fc.uint8Array({ maxLength: 60 }),
        fc.record({ service: fc.constantFrom('grpc.Health', 'grpc.Nope', ''), method: fc.constantFrom('Check', 'Version', 'X'), payload: fc.uint8Array({ maxLength: 8 }) })
          .map((r) => toBinary(RequestSchema, create(RequestSchema, r))),
      ),
    })
    await fc.assert(fc.asyncProperty(fc.array(requestish, { maxLength: 4 }), fc.uint8Array({ maxLength: 40 }), async (frames, tail) => {
      const { conn, peer } = serverWithRawPeer(server)
      for (const f of frames) peer.write(encodeFrame(f))
      // Trailing garbage may look like the start of another frame: an incomplete one is never answered,
      // an oversize header is answered at once with 8 on whatever id it names.
      peer.write(tail)
      const requestIds = new Set(frames.filter((f) => f.type === MessageType.REQUEST).map((f) => f.streamId))
      const expected = frames.filter((f) => f.type === MessageType.REQUEST).length
      await peer.until(() => peer.items.length >= expected)
      for (const item of peer.items) {
        expect(item.kind).toBe('frame')
        if (item.kind !== 'frame') continue
        expect(item.frame.type).toBe(MessageType.RESPONSE)
        const resp = fromBinary(ResponseSchema, item.frame.data)
        if (resp.status) expect(KNOWN_CODES.has(resp.status.code)).toBe(true)
        if (resp.status?.code === Code.RESOURCE_EXHAUSTED) {
          expect(resp.status.message).toMatch(/^message length \d+ exceed maximum message size of 4194304$/)
          continue
        }
        expect(requestIds.has(item.frame.streamId)).toBe(true)
        if (item.frame.streamId % 2 === 0) expect(resp.status).toMatchObject({ code: 3, message: 'StreamID must be odd for client initiated streams' })
      }
      await conn.close()
    }), { numRuns: 1000 })
  })
})
