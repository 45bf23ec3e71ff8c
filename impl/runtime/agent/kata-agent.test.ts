// KataAgent.connect against a minimal grpc.Health server (the runtime never depends on the agent).
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { Health, HealthCheckResponse_ServingStatus } from '../../gen/health_pb.ts'
import { TtrpcServer } from '../../ttrpc/index.ts'
import { Code } from '../../types/errors.ts'
import { hybridVsockDialer, unixDialer } from './dialer.ts'
import { AgentNotReadyError, KataAgent } from './kata-agent.ts'

let dir: string
let server: TtrpcServer
let serving = HealthCheckResponse_ServingStatus.SERVING

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kataref-kata-agent-'))
  serving = HealthCheckResponse_ServingStatus.SERVING
  server = new TtrpcServer().register(Health, { check: () => ({ status: serving }) })
  await server.listen(join(dir, 'agent.sock'))
})
afterEach(async () => {
  await server.close()
  await rm(dir, { recursive: true, force: true })
})

async function listen(path: string, onConn: (c: Socket) => void): Promise<Server> {
  const s = createServer(onConn)
  await new Promise<void>((r) => s.listen(path, r))
  return s
}

describe('KataAgent.connect', () => {
  test('ready once grpc.Health/Check answers SERVING', async () => {
    const a = await KataAgent.connect({ dialer: unixDialer(join(dir, 'agent.sock')), deadlineMs: 5_000 })
    expect((await a.health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING)
    a.close()
  })

  test('NOT_SERVING until the deadline gives the not-ready error naming the status', async () => {
    serving = HealthCheckResponse_ServingStatus.NOT_SERVING
    const err = await KataAgent.connect({ dialer: unixDialer(join(dir, 'agent.sock')), deadlineMs: 2_000, checkTimeoutMs: 1_000 }).catch((e) => e)
    expect(err).toBeInstanceOf(AgentNotReadyError)
    expect(err.message).toContain('health status 2')
  })

  test('a peer that never answers gives the not-ready error with the console tail', async () => {
    const mute = await listen(join(dir, 'mute.sock'), () => {})
    try {
      const err = await KataAgent.connect({ dialer: unixDialer(join(dir, 'mute.sock')), deadlineMs: 600, checkTimeoutMs: 200, consoleTail: async (n) => `console line 1\nasked for ${n}` }).catch((e) => e)
      expect(err).toBeInstanceOf(AgentNotReadyError)
      expect(err.code).toBe(Code.DEADLINE_EXCEEDED)
      expect(err.message).toContain('not ready')
      expect(err.message).toContain('asked for 40')
    } finally {
      mute.close()
    }
  })

  test('no socket at all: the not-ready error names the dial failure', async () => {
    const err = await KataAgent.connect({ dialer: unixDialer(join(dir, 'absent.sock')), deadlineMs: 300 }).catch((e) => e)
    expect(err).toBeInstanceOf(AgentNotReadyError)
    expect(err.message).toMatch(/ENOENT/)
  })

  test('hybrid vsock: CONNECT 1024 handshake, then ttrpc on the same socket', async () => {
    const lines: string[] = []
    const proxy = await listen(join(dir, 'hv.sock'), (c) => {
      c.once('data', (d: Buffer) => {
        lines.push(d.toString())
        const upstream = connect(join(dir, 'agent.sock'))
        c.write('OK 1073741824\n')
        c.pipe(upstream).pipe(c)
      })
    })
    try {
      const hv = await KataAgent.connect({ dialer: hybridVsockDialer(join(dir, 'hv.sock')), deadlineMs: 5_000 })
      expect(lines[0]).toBe('CONNECT 1024\n')
      expect((await hv.health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING)
      hv.close()
    } finally {
      proxy.close()
    }
  })

  test('hybrid vsock: a refused handshake is an error naming the reply', async () => {
    const proxy = await listen(join(dir, 'hv2.sock'), (c) => c.once('data', () => c.end('NO such port\n')))
    try {
      const err = await hybridVsockDialer(join(dir, 'hv2.sock')).dial().catch((e) => e)
      expect(err.message).toContain('handshake refused')
      expect(err.message).toContain('NO such port')
    } finally {
      proxy.close()
    }
  })
})
