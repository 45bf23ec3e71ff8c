// The agent in host mode (unix socket), driven over real ttrpc by a plain client (the agent never
// depends on the runtime; the runtime's KataAgent has its own tests).
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { release, tmpdir, hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { AgentService } from '../gen/agent_pb.ts'
import { Health } from '../gen/health_pb.ts'
import { createServiceClient, TtrpcClient } from '../ttrpc/index.ts'
import { Code } from '../types/errors.ts'
import { nullLogger } from '../types/logger.ts'
import { guestAgentConfig } from './config.ts'
import { main, parseEndpoint, startAgent, type RunningAgent } from './main.ts'

let dir: string
let agent: RunningAgent
let client: { client: TtrpcClient; agent: ReturnType<typeof createServiceClient<typeof AgentService>>; health: ReturnType<typeof createServiceClient<typeof Health>>; close(): void }

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kataref-agent-test-'))
  agent = await startAgent({ kind: 'unix', path: join(dir, 'agent.sock') }, guestAgentConfig({ rootDir: join(dir, 'root'), manageHostname: false }), nullLogger)
  const sock = connect(join(dir, 'agent.sock'))
  await new Promise((r) => sock.once('connect', r))
  const c = new TtrpcClient(sock)
  client = { client: c, agent: createServiceClient(AgentService, c), health: createServiceClient(Health, c), close: () => void c.close() }
})
afterEach(async () => {
  client.close()
  await agent.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('agent in host mode', () => {
  test('GetGuestDetails reports the agent version and the kernel version', async () => {
    const d = await client.agent.getGuestDetails({ memBlockSize: true, memHotplugProbe: true })
    expect(d.agentDetails?.version).toMatch(/kataref/)
    expect(d.agentDetails?.extraFeatures).toContain(`kernel_version=${release()}`)
    expect(d.agentDetails?.initDaemon).toBe(false)
  })

  test('CreateSandbox makes the sandbox dirs and writes resolv.conf; DestroySandbox removes them', async () => {
    const root = join(dir, 'root')
    await client.agent.createSandbox({ sandboxId: 'sb1', hostname: 'kataref-test', dns: ['nameserver 10.0.0.1'] })
    expect(existsSync(join(root, 'sandbox', 'resolv.conf'))).toBe(true)
    expect(existsSync(join(root, 'shared', 'containers'))).toBe(true)
    // Host mode never renames the machine.
    expect(hostname()).not.toBe('kataref-test')
    expect(agent.sandbox.id).toBe('sb1')
    await client.agent.destroySandbox({})
    expect(existsSync(join(root, 'sandbox'))).toBe(false)
    expect(existsSync(join(root, 'shared'))).toBe(false)
    expect(agent.sandbox.running).toBe(false)
  })

  test('a second CreateSandbox is ALREADY_EXISTS naming the sandbox', async () => {
    await client.agent.createSandbox({ sandboxId: 'sb1' })
    await expect(client.agent.createSandbox({ sandboxId: 'sb2' })).rejects.toMatchObject({ code: Code.ALREADY_EXISTS, message: expect.stringContaining('sb1') })
  })

  test('a bad hostname is INVALID_ARGUMENT naming the input', async () => {
    await expect(client.agent.createSandbox({ sandboxId: 'sb', hostname: 'a/b' })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, message: expect.stringContaining('hostname') })
    await expect(client.agent.createSandbox({ sandboxId: 'sb', hostname: 'x'.repeat(65) })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT })
    expect(agent.sandbox.running).toBe(false)
  })

  test('methods not implemented yet answer UNIMPLEMENTED with their name; the connection stays usable', async () => {
    await expect(client.agent.statsContainer({})).rejects.toMatchObject({ code: Code.UNIMPLEMENTED, message: expect.stringContaining('StatsContainer') })
    await expect(client.client.invoke('grpc.AgentService', 'NoSuchMethod', new Uint8Array())).rejects.toMatchObject({ code: Code.UNIMPLEMENTED, message: expect.stringContaining('NoSuchMethod') })
    const h = await client.health.check({})
    expect(h.status).toBe(1)
  })
})

describe('agent CLI', () => {
  test('endpoint syntax errors name the flag', () => {
    expect(() => parseEndpoint('--listen', 'tcp:1')).toThrow(/--listen/)
    expect(parseEndpoint('--channel', 'vport:kataref.agent.0')).toEqual({ kind: 'vport', name: 'kataref.agent.0' })
  })
  test('both or neither of --listen/--channel is an error (exit 1); unknown flags exit 2', async () => {
    expect(await main([])).toBe(1)
    expect(await main(['--bogus'])).toBe(2)
  })
})
