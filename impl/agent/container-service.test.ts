// The container/process RPCs and CopyFile over real ttrpc, agent in host mode (root + busybox needed
// for containers; CopyFile runs anywhere).
import { existsSync } from 'node:fs'
import { copyFile as cp, mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect } from 'node:net'
import { once } from 'node:events'
import { AgentService } from '../gen/agent_pb.ts'
import { createServiceClient, TtrpcClient } from '../ttrpc/index.ts'
import { nullLogger } from '../types/logger.ts'
import { guestAgentConfig } from './config.ts'
import { startAgent, type RunningAgent } from './main.ts'

let dir: string
let agent: RunningAgent
let client: { agent: ReturnType<typeof createServiceClient<typeof AgentService>>; close(): void }
const canRun = process.getuid?.() === 0 && existsSync('/bin/busybox')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kataref-cs-'))
  agent = await startAgent({ kind: 'unix', path: join(dir, 'agent.sock') }, guestAgentConfig({ rootDir: join(dir, 'root'), manageHostname: false }), nullLogger)
  const sock = connect(join(dir, 'agent.sock'))
  await once(sock, 'connect')
  const c = new TtrpcClient(sock)
  client = { agent: createServiceClient(AgentService, c), close: () => void c.close() }
  await client.agent.createSandbox({ sandboxId: 'sb', hostname: '', dns: [] })
})
afterAll(async () => {
  client?.close()
  await agent?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('container service over ttrpc (host mode)', () => {
  test('CopyFile lands under the agent root\'s shared dir; an escape answers PERMISSION_DENIED', async () => {
    const path = '/run/kata-containers/shared/containers/c/etc/hosts'
    await client.agent.copyFile({ path, fileMode: 0o100640, dirMode: 0o750, data: Buffer.from('127.0.0.1 x\n'), fileSize: 12n, offset: 0n, uid: 0, gid: 0 })
    const local = join(dir, 'root/shared/containers/c/etc/hosts')
    expect(await readFile(local, 'utf8')).toBe('127.0.0.1 x\n')
    expect((await stat(local)).mode & 0o7777).toBe(0o640)
    await expect(client.agent.copyFile({ path: '/run/kata-containers/shared/x', fileMode: 0o100644, data: new Uint8Array(), fileSize: 0n, offset: 0n, uid: 0, gid: 0, dirMode: 0 })).rejects.toMatchObject({ code: 7 })
  })

  test.skipIf(!canRun)('Create/Start/Read/Wait/Remove through the RPCs; unknown ids answer NOT_FOUND', async () => {
    const rootfs = join(dir, 'root/shared/containers/c1/rootfs')
    await mkdir(join(rootfs, 'bin'), { recursive: true })
    await mkdir(join(rootfs, 'proc'))
    await cp('/bin/busybox', join(rootfs, 'bin/busybox'))
    await symlink('busybox', join(rootfs, 'bin/sh'))
    await client.agent.createContainer({ containerId: 'c1', execId: 'c1', OCI: { Process: { Args: ['sh', '-c', 'echo hi; exit 5'], Env: ['PATH=/bin'], Cwd: '/' }, Root: { Path: '' } } })
    await client.agent.startContainer({ containerId: 'c1' })
    expect(Buffer.from((await client.agent.readStdout({ containerId: 'c1', execId: 'c1', len: 100 })).data).toString()).toBe('hi\n')
    expect((await client.agent.waitProcess({ containerId: 'c1', execId: '' })).status).toBe(5)
    expect((await client.agent.readStdout({ containerId: 'c1', execId: 'c1', len: 100 })).data.length).toBe(0)
    await client.agent.removeContainer({ containerId: 'c1', timeout: 5 })
    await expect(client.agent.waitProcess({ containerId: 'c1', execId: '' })).rejects.toMatchObject({ code: 5 })
    await expect(client.agent.signalProcess({ containerId: 'nope', execId: '', signal: 9 })).rejects.toMatchObject({ code: 5 })
  })
})
