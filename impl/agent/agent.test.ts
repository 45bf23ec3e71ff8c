// The agent in host mode (unix socket), driven by the runtime's KataAgent client over real ttrpc.
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { release, tmpdir, hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { KataAgent, AgentNotReadyError } from '../runtime/agent/kata-agent.ts'
import { hybridVsockDialer, unixDialer } from '../runtime/agent/dialer.ts'
import { Code } from '../types/errors.ts'
import { nullLogger } from '../types/logger.ts'
import { guestAgentConfig } from './config.ts'
import { main, parseEndpoint, startAgent, type RunningAgent } from './main.ts'

let dir: string
let agent: RunningAgent
let client: KataAgent

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kataref-agent-test-'))
  agent = await startAgent({ kind: 'unix', path: join(dir, 'agent.sock') }, guestAgentConfig({ rootDir: join(dir, 'root'), manageHostname: false }), nullLogger)
  client = await KataAgent.connect({ dialer: unixDialer(join(dir, 'agent.sock')), deadlineMs: 5_000 })
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

describe('KataAgent.connect', () => {
  test('a peer that never answers gives the not-ready error with the console tail', async () => {
    const sock = join(dir, 'mute.sock')
    const mute: Server = createServer(() => {})
    await new Promise<void>((r) => mute.listen(sock, r))
    try {
      const err = await KataAgent.connect({ dialer: unixDialer(sock), deadlineMs: 600, checkTimeoutMs: 200, consoleTail: async (n) => `console line 1\nasked for ${n}` }).catch((e) => e)
      expect(err).toBeInstanceOf(AgentNotReadyError)
      expect(err.code).toBe(Code.DEADLINE_EXCEEDED)
      expect(err.message).toContain('not ready')
      expect(err.message).toContain('asked for 40')
    } finally {
      mute.close()
    }
  })

  test('hybrid vsock: CONNECT 1024 handshake, then ttrpc on the same socket', async () => {
    const sock = join(dir, 'hv.sock')
    const { connect } = await import('node:net')
    const lines: string[] = []
    const proxy = createServer((c) => {
      c.once('data', (d) => {
        lines.push(d.toString())
        const upstream = connect(join(dir, 'agent.sock'))
        c.write('OK 1073741824\n')
        c.pipe(upstream).pipe(c)
      })
    })
    await new Promise<void>((r) => proxy.listen(sock, r))
    try {
      client.close() // the agent serves one client at a time here as QEMU's chardev does
      const hv = await KataAgent.connect({ dialer: hybridVsockDialer(sock), deadlineMs: 5_000 })
      expect(lines[0]).toBe('CONNECT 1024\n')
      expect((await hv.health.check({})).status).toBe(1)
      hv.close()
    } finally {
      proxy.close()
    }
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
