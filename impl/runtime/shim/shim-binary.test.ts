// The real containerd-shim-kataref-v2 binary against a stub containerd events server
// (containerd.services.events.ttrpc.v1.Events/Forward on TTRPC_ADDRESS): `start` prints exactly the
// address, the socket accepts connections before the address is printed, `start` exits while the
// daemon serves; the daemon (scripted fake runtime: KATAREF_SHIM_RUNTIME=fake) runs a task and exits
// on Shutdown; `delete` prints a DeleteResponse.
import { execFileSync, spawn } from 'node:child_process'
import { constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fromBinary } from '@bufbuild/protobuf'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Events, type Envelope } from '../../gen/containerd/events_pb.ts'
import { DeleteResponseSchema, Status, Task } from '../../gen/containerd/task_pb.ts'
import { createServiceClient, TtrpcClient, TtrpcServer } from '../../ttrpc/index.ts'
import { addressPath, shimSocketAddress } from './flags.ts'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
const BIN = join(root, 'bin', 'containerd-shim-kataref-v2.mjs')

let dir: string
let events: TtrpcServer
const envelopes: Envelope[] = []
let daemonPid = 0

function runShim(args: string[], cwd: string, env: Record<string, string>, onFirstStdout?: () => void): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    c.stdin.end()
    const out: Buffer[] = []
    let err = ''
    c.stdout.on('data', (d: Buffer) => {
      if (out.length === 0) onFirstStdout?.()
      out.push(d)
    })
    c.stderr.on('data', (d: Buffer) => (err += d.toString()))
    // 'close': the process exited AND its stdio pipes closed (what containerd waits for).
    c.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: err }))
  })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kataref-shimbin-'))
  events = new TtrpcServer().register(Events, { forward: (r) => (envelopes.push(r.envelope!), {}) })
  await events.listen(join(dir, 'containerd.sock.ttrpc'))
})

afterAll(async () => {
  if (daemonPid) {
    try {
      process.kill(-daemonPid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
  await events.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('containerd-shim-kataref-v2 binary', () => {
  it('start prints only the address of an already listening socket; the daemon serves Task; Shutdown ends it; delete prints a DeleteResponse', async () => {
    const bundle = join(dir, 'bundle')
    mkdirSync(join(bundle, 'rootfs'), { recursive: true })
    writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2-dev', process: { args: ['echo', 'hi'], cwd: '/' }, root: { path: 'rootfs' } }))
    execFileSync('mkfifo', [join(bundle, 'out'), join(bundle, 'log')])
    const logFd = openSync(join(bundle, 'log'), constants.O_RDONLY | constants.O_NONBLOCK)
    const logSock = new Socket({ fd: logFd, readable: true, writable: false })
    let logText = ''
    logSock.on('data', (d: Buffer) => (logText += d.toString()))

    const address = join(dir, 'containerd.sock')
    const env = { KATAREF_SHIM_SOCKET_DIR: join(dir, 's'), KATAREF_SHIM_RUNTIME: 'fake', TTRPC_ADDRESS: join(dir, 'containerd.sock.ttrpc') }
    const expected = shimSocketAddress(address, 'default', 't1', join(dir, 's'))
    let early: Promise<boolean> | undefined
    const r = await runShim(['-namespace', 'default', '-address', address, '-publish-binary', '/bin/false', '-id', 't1', 'start'], bundle, env, () => {
      // The moment the first byte of the address appears, the socket must accept.
      early = new Promise((res) => {
        const s = connect(addressPath(expected))
        s.once('connect', () => (s.destroy(), res(true)))
        s.once('error', () => res(false))
      })
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.toString()).toBe(expected)
    expect(await early).toBe(true)
    expect(readFileSync(join(bundle, 'address'), 'utf8')).toBe(expected)
    daemonPid = Number(readFileSync(join(bundle, 'shim.pid'), 'utf8'))
    expect(daemonPid).toBeGreaterThan(0)
    expect(() => process.kill(daemonPid, 0)).not.toThrow()

    // containerd's side: Create, Connect, Start, Wait, State, Delete, Shutdown.
    const sock = await new Promise<Socket>((res, rej) => {
      const s = connect(addressPath(expected))
      s.once('connect', () => res(s))
      s.once('error', rej)
    })
    const client = new TtrpcClient(sock)
    const task = createServiceClient(Task, client)
    const outFd = openSync(join(bundle, 'out'), constants.O_RDONLY | constants.O_NONBLOCK)
    const outSock = new Socket({ fd: outFd, readable: true, writable: false })
    let outText = ''
    const outDone = new Promise<void>((res) => {
      outSock.on('data', (d: Buffer) => (outText += d.toString()))
      outSock.on('end', () => res())
    })
    expect((await task.create({ id: 't1', bundle, stdout: join(bundle, 'out') }, { timeoutMs: 20_000 })).pid).toBe(4242)
    expect((await task.connect({ id: 't1' })).shimPid).toBe(daemonPid)
    await task.start({ id: 't1' })
    expect((await task.wait({ id: 't1' })).exitStatus).toBe(0)
    await outDone
    expect(outText).toBe('echo hi\n')
    expect((await task.state({ id: 't1' })).status).toBe(Status.STOPPED)
    await task.delete({ id: 't1' })
    await task.shutdown({ id: 't1' })
    await client.closed
    const end = Date.now() + 3000
    while (Date.now() < end && existsSync(`/proc/${daemonPid}`)) await new Promise((r) => setTimeout(r, 20))
    expect(existsSync(`/proc/${daemonPid}`)).toBe(false) // exited within containerd's 3 s shutdown timeout
    daemonPid = 0
    expect(existsSync(addressPath(expected))).toBe(false)
    expect(envelopes.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'])
    // Structured JSON logs went to the bundle's log FIFO, at info.
    await new Promise((r) => setTimeout(r, 100))
    const lines = logText.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string })
    expect(lines.some((l) => l.msg.includes('serving containerd.task.v2.Task'))).toBe(true)
    expect(lines.every((l) => l.level >= 30)).toBe(true)
    logSock.destroy()
    outSock.destroy()

    // delete: idempotent cleanup, DeleteResponse on stdout, exit 0 (also with the bundle gone).
    const d = await runShim(['-namespace', 'default', '-address', address, '-publish-binary', '/bin/false', '-id', 't1', '-bundle', bundle, 'delete'], bundle, env)
    expect(d.code).toBe(0)
    expect(fromBinary(DeleteResponseSchema, d.stdout).exitStatus).toBe(137)
    rmSync(bundle, { recursive: true })
    const d2 = await runShim(['-namespace', 'default', '-address', address, '-id', 't1', '-bundle', bundle, 'delete'], dir, env)
    expect(d2.code).toBe(0)
  })

  it('a CRI container of an existing sandbox reuses that shim: start prints the sandbox shim\'s address and spawns nothing; -debug logs at debug', async () => {
    const address = join(dir, 'containerd.sock')
    const env = { KATAREF_SHIM_SOCKET_DIR: join(dir, 's'), KATAREF_SHIM_RUNTIME: 'fake', TTRPC_ADDRESS: join(dir, 'containerd.sock.ttrpc') }
    const sbBundle = join(dir, 'sb')
    mkdirSync(sbBundle, { recursive: true })
    writeFileSync(join(sbBundle, 'config.json'), JSON.stringify({ annotations: { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': 'pod1' } }))
    execFileSync('mkfifo', [join(sbBundle, 'log')])
    const logSock = new Socket({ fd: openSync(join(sbBundle, 'log'), constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false })
    let logText = ''
    logSock.on('data', (d: Buffer) => (logText += d.toString()))
    const sb = await runShim(['-namespace', 'k8s.io', '-address', address, '-id', 'pod1', '-debug', 'start'], sbBundle, env)
    expect(sb.code).toBe(0)
    daemonPid = Number(readFileSync(join(sbBundle, 'shim.pid'), 'utf8'))
    const ctrBundle = join(dir, 'ctr1')
    mkdirSync(ctrBundle, { recursive: true })
    writeFileSync(join(ctrBundle, 'config.json'), JSON.stringify({ annotations: { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 'pod1' } }))
    const c = await runShim(['-namespace', 'k8s.io', '-address', address, '-id', 'ctr1', 'start'], ctrBundle, env)
    expect(c.code).toBe(0)
    expect(c.stdout.toString()).toBe(sb.stdout.toString())
    expect(existsSync(join(ctrBundle, 'shim.pid'))).toBe(false)
    expect(readFileSync(join(ctrBundle, 'address'), 'utf8')).toBe(sb.stdout.toString())
    // The daemon logs at debug with -debug (pino level 20).
    const sock = await new Promise<Socket>((res, rej) => {
      const s = connect(addressPath(sb.stdout.toString()))
      s.once('connect', () => res(s))
      s.once('error', rej)
    })
    const client = new TtrpcClient(sock)
    await createServiceClient(Task, client).shutdown({ id: 'pod1', now: true })
    await client.closed
    const end = Date.now() + 3000
    while (Date.now() < end && existsSync(`/proc/${daemonPid}`)) await new Promise((r) => setTimeout(r, 20))
    expect(existsSync(`/proc/${daemonPid}`)).toBe(false)
    daemonPid = 0
    await new Promise((r) => setTimeout(r, 100))
    logSock.destroy()
    const levels = logText.trim().split('\n').map((l) => (JSON.parse(l) as { level: number }).level)
    expect(levels.some((l) => l === 20)).toBe(true)
  })

  it('bad flags exit 2 with a usage message; no namespace exits 1', async () => {
    const r = await runShim(['-nope', 'start'], dir, {})
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('flag provided but not defined: -nope')
    expect((await runShim(['-id', 'x', 'start'], dir, {})).code).toBe(1)
  })
})
