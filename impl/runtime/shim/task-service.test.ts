// Task service over real ttrpc on a unix socket, with a FakeSandboxRuntime, real FIFOs and a stub
// containerd events server (Events/Forward) receiving what the EventForwarder sends.
import { execFileSync } from 'node:child_process'
import { constants, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { connect, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromBinary } from '@bufbuild/protobuf'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Events, type Envelope } from '../../gen/containerd/events_pb.ts'
import { TaskExitSchema, TaskDeleteSchema, TaskCreateSchema, TaskStartSchema } from '../../gen/containerd/task-events_pb.ts'
import { Status, Task } from '../../gen/containerd/task_pb.ts'
import { createServiceClient, TtrpcClient, TtrpcServer, type ServiceClient } from '../../ttrpc/index.ts'
import { EventForwarder } from './events.ts'
import { FakeSandboxRuntime } from './fake-runtime.ts'
import { TaskService } from './task-service.ts'

let dir: string
let server: TtrpcServer
let eventsServer: TtrpcServer
let envelopes: Envelope[]
let fake: FakeSandboxRuntime
let svc: TaskService
let shutdownCalled: number
const clients: TtrpcClient[] = []

async function dial(): Promise<ServiceClient<typeof Task>> {
  const sock = await new Promise<Socket>((res, rej) => {
    const s = connect(join(dir, 'shim.sock'))
    s.once('connect', () => res(s))
    s.once('error', rej)
  })
  const c = new TtrpcClient(sock)
  clients.push(c)
  return createServiceClient(Task, c)
}

function bundle(id: string, spec: object = { ociVersion: '1.0.2-dev', process: { args: ['echo', 'hi'], cwd: '/' }, root: { path: 'rootfs' } }): { bundle: string; stdin: string; stdout: string; stderr: string } {
  const b = join(dir, id)
  mkdirSync(join(b, 'rootfs'), { recursive: true })
  writeFileSync(join(b, 'config.json'), JSON.stringify(spec))
  const fifo = (n: string) => {
    const p = join(b, n)
    execFileSync('mkfifo', [p])
    return p
  }
  return { bundle: b, stdin: fifo('stdin'), stdout: fifo('stdout'), stderr: fifo('stderr') }
}

/** ctr's side of an output FIFO: everything until EOF, and when EOF was seen. */
function readFifo(path: string): { done: Promise<string>; eofAt: () => number | undefined } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const s = new Socket({ fd, readable: true, writable: false })
  let text = ''
  let eof: number | undefined
  const done = new Promise<string>((res) => {
    s.on('data', (d: Buffer) => (text += d.toString()))
    s.on('end', () => {
      eof = performance.now()
      res(text)
    })
  })
  return { done, eofAt: () => eof }
}

function topics(): string[] {
  return envelopes.map((e) => `${e.topic} ${e.event?.typeUrl}`)
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kataref-shim-'))
  envelopes = []
  eventsServer = new TtrpcServer().register(Events, {
    forward: (req) => {
      envelopes.push(req.envelope!)
      return {}
    },
  })
  await eventsServer.listen(join(dir, 'containerd.sock.ttrpc'))
  fake = new FakeSandboxRuntime()
  shutdownCalled = 0
  svc = new TaskService({
    runtime: fake,
    events: new EventForwarder({ namespace: 'default', ttrpcAddress: `unix://${join(dir, 'containerd.sock.ttrpc')}` }),
    onShutdown: () => {
      shutdownCalled++
    },
  })
  server = new TtrpcServer().register(Task, svc.handlers())
  await server.listen(join(dir, 'shim.sock'))
})

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await server.close()
  await eventsServer.close()
  rmSync(dir, { recursive: true, force: true })
})

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('Task service (fake sandbox runtime, real ttrpc)', () => {
  it('ctr run --rm call order (§3.8): Create, Connect, Start, Wait before exit, State, Delete, Shutdown; output complete before Wait answers; events in order', async () => {
    const b = bundle('c1')
    const out = readFifo(b.stdout)
    const err = readFifo(b.stderr)
    const task = await dial()
    const created = await task.create({ id: 'c1', ...b, terminal: false })
    expect(created.pid).toBe(fake.pid)
    expect(fake.created[0]!.rootfsDir).toBe(join(b.bundle, 'rootfs'))
    expect(fake.created[0]!.spec.process?.args).toEqual(['echo', 'hi'])
    expect((await task.connect({ id: 'c1' })).taskPid).toBe(fake.pid)
    expect((await task.state({ id: 'c1' })).status).toBe(Status.CREATED)
    // Wait issued before Start (containerd sends it asynchronously).
    let waitedAt: number | undefined
    const waited = task.wait({ id: 'c1' }).then((r) => ((waitedAt = performance.now()), r))
    fake.onStart = (cid, eid, f) => {
      setTimeout(() => {
        f.print(cid, eid, 'hi\n')
        f.print(cid, eid, 'to stderr\n', 'err')
        f.exit(cid, eid, 0)
      }, 50)
    }
    expect((await task.start({ id: 'c1' })).pid).toBe(fake.pid)
    expect((await task.state({ id: 'c1' })).status).toBe(Status.RUNNING)
    const w = await waited
    expect(w.exitStatus).toBe(0)
    expect(w.exitedAt).toBeDefined()
    // Both FIFOs were closed (EOF seen by the reader) before Wait answered.
    expect(await out.done).toBe('hi\n')
    expect(await err.done).toBe('to stderr\n')
    expect(out.eofAt()!).toBeLessThanOrEqual(waitedAt!)
    const st = await task.state({ id: 'c1' })
    expect(st.status).toBe(Status.STOPPED)
    expect(st.exitStatus).toBe(0)
    const del = await task.delete({ id: 'c1' })
    expect(del).toMatchObject({ pid: fake.pid, exitStatus: 0 })
    await expect(task.state({ id: 'c1' })).rejects.toMatchObject({ code: 5 })
    await task.shutdown({ id: 'c1' })
    await until(() => shutdownCalled === 1)
    expect(fake.calls).toEqual(['createContainer c1', 'startContainer c1', 'waitProcess c1 c1', 'removeContainer c1', 'shutdown'])
    await until(() => envelopes.length === 4)
    expect(topics()).toEqual([
      '/tasks/create containerd.events.TaskCreate',
      '/tasks/start containerd.events.TaskStart',
      '/tasks/exit containerd.events.TaskExit',
      '/tasks/delete containerd.events.TaskDelete',
    ])
    expect(envelopes.every((e) => e.namespace === 'default' && e.timestamp !== undefined)).toBe(true)
    expect(fromBinary(TaskCreateSchema, envelopes[0]!.event!.value)).toMatchObject({ containerId: 'c1', bundle: b.bundle, pid: fake.pid, io: { stdout: b.stdout } })
    expect(fromBinary(TaskStartSchema, envelopes[1]!.event!.value)).toMatchObject({ containerId: 'c1', pid: fake.pid })
    expect(fromBinary(TaskExitSchema, envelopes[2]!.event!.value)).toMatchObject({ containerId: 'c1', id: 'c1', pid: fake.pid, exitStatus: 0 })
    expect(fromBinary(TaskDeleteSchema, envelopes[3]!.event!.value)).toMatchObject({ containerId: 'c1', pid: fake.pid, exitStatus: 0 })
  })

  it('Wait after the exit answers at once, repeatedly; Kill SIGKILL gives 137; Kill of a stopped process is accepted', async () => {
    const b = bundle('c2')
    const task = await dial()
    await task.create({ id: 'c2', ...b })
    await task.start({ id: 'c2' })
    await task.kill({ id: 'c2', signal: 9 })
    await until(() => fake.calls.includes('signalProcess c2  9'))
    await new Promise((r) => setTimeout(r, 100))
    expect((await task.wait({ id: 'c2' })).exitStatus).toBe(137)
    expect((await task.wait({ id: 'c2' })).exitStatus).toBe(137)
    expect((await task.state({ id: 'c2' })).status).toBe(Status.STOPPED)
    await task.kill({ id: 'c2', signal: 15 })
    expect(fake.calls.filter((c) => c.startsWith('signalProcess'))).toHaveLength(1)
  })

  it('Delete after the client disconnected and a new one connected; Delete of a running task is refused', async () => {
    const b = bundle('c3')
    const first = await dial()
    await first.create({ id: 'c3', ...b })
    await first.start({ id: 'c3' })
    await expect(first.delete({ id: 'c3' })).rejects.toMatchObject({ code: 9 })
    await clients[0]!.close()
    fake.exit('c3', '', 3)
    const second = await dial()
    expect((await second.wait({ id: 'c3' })).exitStatus).toBe(3)
    expect(await second.delete({ id: 'c3' })).toMatchObject({ exitStatus: 3 })
    expect(fake.shutdowns).toBe(1)
  })

  it('Exec: the process spec is JSON in an Any; Start runs it, Wait gives its status, Delete removes only the exec', async () => {
    const b = bundle('c4')
    const task = await dial()
    await task.create({ id: 'c4', ...b })
    await task.start({ id: 'c4' })
    const eb = bundle('c4-e1')
    const out = readFifo(eb.stdout)
    const spec = { args: ['sh', '-c', 'kill -TERM $$'], cwd: '/', env: ['PATH=/bin'] }
    await task.exec({ id: 'c4', execId: 'e1', stdout: eb.stdout, spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from(JSON.stringify(spec)) } })
    await expect(task.exec({ id: 'c4', execId: 'e1' })).rejects.toMatchObject({ code: 6 })
    expect((await task.state({ id: 'c4', execId: 'e1' })).status).toBe(Status.CREATED)
    fake.onStart = (cid, eid, f) => {
      f.print(cid, eid, 'from exec\n')
      f.exit(cid, eid, 143)
    }
    await task.start({ id: 'c4', execId: 'e1' })
    expect(fake.procs.get('c4/e1')!.process).toEqual(spec)
    expect((await task.wait({ id: 'c4', execId: 'e1' })).exitStatus).toBe(143)
    expect(await out.done).toBe('from exec\n')
    expect(await task.delete({ id: 'c4', execId: 'e1' })).toMatchObject({ exitStatus: 143 })
    expect((await task.state({ id: 'c4' })).status).toBe(Status.RUNNING)
    expect(fake.calls).not.toContain('removeContainer c4')
    // Shutdown without `now` while a task is present keeps serving.
    await task.shutdown({ id: 'c4' })
    await new Promise((r) => setTimeout(r, 50))
    expect(shutdownCalled).toBe(0)
    expect((await task.state({ id: 'c4' })).status).toBe(Status.RUNNING)
  })

  it('stdin: FIFO data reaches WriteStdin; CloseIO before Start is applied after Start', async () => {
    const b = bundle('c5')
    const task = await dial()
    await task.create({ id: 'c5', ...b })
    // ctr's writer side of the stdin FIFO.
    const w = openSync(b.stdin, constants.O_RDWR)
    const writer = new Socket({ fd: w, readable: false, writable: true })
    await task.start({ id: 'c5' })
    await new Promise<void>((r) => writer.write('typed input\n', () => r()))
    writer.destroy()
    await until(() => fake.stdinOf('c5', '').closed)
    expect(fake.stdinOf('c5', '').data).toBe('typed input\n')

    const b6 = bundle('c6')
    await task.create({ id: 'c6', ...b6, stdin: '' })
    await task.closeIO({ id: 'c6', stdin: true })
    expect(fake.calls).not.toContain('closeStdin c6 c6')
    await task.start({ id: 'c6' })
    await until(() => fake.calls.includes('closeStdin c6 c6'))
  })

  it('unknown ids answer NOT_FOUND, unimplemented methods 12, Create of an existing id ALREADY_EXISTS, a bundle without config.json INVALID_ARGUMENT', async () => {
    const task = await dial()
    await expect(task.state({ id: 'nope' })).rejects.toMatchObject({ code: 5 })
    await expect(task.pause({ id: 'nope' })).rejects.toMatchObject({ code: 12 })
    await expect(task.stats({ id: 'nope' })).rejects.toMatchObject({ code: 12 })
    const b = bundle('c7')
    await task.create({ id: 'c7', ...b })
    await expect(task.create({ id: 'c7', ...b })).rejects.toMatchObject({ code: 6 })
    await expect(task.create({ id: 'c8', bundle: join(dir, 'missing') })).rejects.toMatchObject({ code: 3 })
    expect((await task.pids({ id: 'c7' })).processes.map((p) => p.pid)).toEqual([fake.pid])
  })

  it('Delete of a task that never started answers a pending Wait', async () => {
    const b = bundle('c10')
    const task = await dial()
    await task.create({ id: 'c10', ...b })
    const waited = task.wait({ id: 'c10' })
    expect(await task.delete({ id: 'c10' })).toMatchObject({ exitStatus: 0 })
    await expect(waited).resolves.toMatchObject({ exitStatus: 0 })
    expect(fake.calls).toEqual(['createContainer c10', 'removeContainer c10', 'shutdown'])
  })

  it('events are best effort: with no events server the RPCs still succeed', async () => {
    await eventsServer.close()
    const b = bundle('c9')
    const task = await dial()
    await task.create({ id: 'c9', ...b })
    fake.onStart = (c, e, f) => f.exit(c, e, 0)
    await task.start({ id: 'c9' })
    expect((await task.wait({ id: 'c9' })).exitStatus).toBe(0)
    await task.delete({ id: 'c9' })
  })
})
