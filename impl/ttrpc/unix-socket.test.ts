// Client and server over a real unix socket: listen/close lifecycle, stale socket files,
// concurrent out-of-order calls, and the peer closing mid-call.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AgentService } from '../gen/agent_pb.ts'
import { Health } from '../gen/health_pb.ts'
import { Code } from '../types/errors.ts'
import { createServiceClient, TtrpcClient } from './client.ts'
import { TtrpcClosedError } from './errors.ts'
import { TtrpcServer } from './server.ts'
import { deferred } from './test-support.ts'

let dir: string
let sockPath: string
const cleanups: Array<() => Promise<unknown>> = []

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kataref-ttrpc-'))
  sockPath = join(dir, 'agent.sock')
})
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((f) => f()))
  rmSync(dir, { recursive: true, force: true })
})

async function dial(path: string): Promise<TtrpcClient> {
  const sock = connect(path)
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  const client = new TtrpcClient(sock)
  cleanups.push(() => client.close())
  return client
}

async function listening(server: TtrpcServer, path = sockPath): Promise<TtrpcServer> {
  await server.listen(path)
  cleanups.push(() => server.close())
  return server
}

describe('unix socket', () => {
  it('answers concurrent calls out of order on one connection', async () => {
    const gates = new Map<number, { promise: Promise<void>; resolve: () => void }>()
    const allIn = deferred<void>()
    const server = await listening(new TtrpcServer().register(AgentService, {
      readStdout: async (req) => {
        const gate = deferred<void>()
        gates.set(req.len, gate)
        if (gates.size === 4) allIn.resolve()
        await gate.promise
        return { data: new Uint8Array(req.len) }
      },
    }))
    expect(server).toBeDefined()
    const agent = createServiceClient(AgentService, await dial(sockPath))
    const calls = [1, 2, 3, 4].map((len) => agent.readStdout({ len }))
    await allIn.promise
    for (const len of [4, 2, 3, 1]) gates.get(len)!.resolve()
    expect((await Promise.all(calls)).map((r) => r.data.length)).toEqual([1, 2, 3, 4])
  })

  it('removes a stale socket file before listening and the socket file on close', async () => {
    // A process that exits without closing its listener leaves the socket file behind.
    const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sockPath)}, () => process.exit(0))`])
    expect(r.status).toBe(0)
    expect(existsSync(sockPath)).toBe(true)
    const server = new TtrpcServer().register(Health, { check: async () => ({ status: 1 }) })
    await server.listen(sockPath)
    const client = await dial(sockPath)
    expect((await client.call(Health, 'check', {})).status).toBe(1)
    await server.close()
    await server.close()
    expect(existsSync(sockPath)).toBe(false)
    await client.closed
  })

  it('refuses to replace a path that is not a socket', async () => {
    writeFileSync(sockPath, 'not a socket')
    await expect(new TtrpcServer().listen(sockPath)).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION })
    expect(existsSync(sockPath)).toBe(true)
  })

  it('server.close() mid-call rejects the outstanding calls with the closed error', async () => {
    const entered = deferred<void>()
    const server = await listening(new TtrpcServer().register(AgentService, {
      waitProcess: async (_req, ctx) => {
        entered.resolve()
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
        return { status: 0 }
      },
    }))
    const client = await dial(sockPath)
    const call = client.call(AgentService, 'waitProcess', { containerId: 'c' })
    const outcome = call.then(() => undefined, (e: unknown) => e)
    await entered.promise
    await server.close()
    const err = await outcome
    expect(err).toBeInstanceOf(TtrpcClosedError)
    expect(err).toMatchObject({ message: 'ttrpc: closed' })
    await client.closed
  })

  it('unknown method answers 12 and the connection stays usable', async () => {
    await listening(new TtrpcServer().register(Health, { check: async () => ({ status: 1 }) }))
    const client = await dial(sockPath)
    await expect(client.call(Health, 'version', {})).rejects.toMatchObject({ code: 12, message: 'method Version' })
    expect((await client.call(Health, 'check', {})).status).toBe(1)
  })
})
