// containerd.task.v2.Task (protocols.md §3.5–§3.8) on top of a SandboxRuntime. One instance per shim
// daemon; state survives reconnects (containerd may disconnect and come back for Delete).
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { promisify } from 'node:util'
import { timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt'
import { TaskCreateSchema, TaskDeleteSchema, TaskExecAddedSchema, TaskExecStartedSchema, TaskExitSchema, TaskStartSchema } from '../../gen/containerd/task-events_pb.ts'
import { Status, type Task } from '../../gen/containerd/task_pb.ts'
import type { Mount } from '../../gen/containerd/mount_pb.ts'
import type { ServiceImpl } from '../../ttrpc/index.ts'
import { Code, KatarefError, errorMessage } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { TOPIC, type EventPublisher } from './events.ts'
import type { OciProcessJson, OciSpecJson } from './oci.ts'
import { copyOutput, relayStdin, type StdinRelay } from './stdio.ts'
import type { SandboxRuntime } from './sandbox-runtime.ts'

const run = promisify(execFile)

/** Mounts containerd's rootfs mounts onto `target` and undoes it (injected: unit tests have no mounts). */
export interface RootfsMounter {
  mount(mounts: readonly Mount[], target: string): Promise<void>
  unmount(target: string): Promise<void>
}

/** mount(8) each mount onto the target, as runc's shim does. */
export const systemMounter: RootfsMounter = {
  async mount(mounts, target) {
    for (const m of mounts) {
      const opts = m.options.length ? ['-o', m.options.join(',')] : []
      await run('mount', ['-t', m.type || 'none', ...opts, m.source, target])
    }
  },
  async unmount(target) {
    // Lazy: a leftover user must not keep the bundle busy; "not mounted" is fine.
    await run('umount', ['-l', target]).catch(() => {})
  },
}

interface Proc {
  containerId: string
  /** '' for the init process. */
  execId: string
  pid: number
  status: Status
  exitStatus: number
  exitedAt: Date | undefined
  stdin: string
  stdout: string
  stderr: string
  terminal: boolean
  spec?: OciProcessJson
  stdinRelay?: StdinRelay
  stdinClosed: boolean
  /** Resolves after the exit was recorded: output copied and FIFOs closed. */
  exited: Promise<void>
  markExited: () => void
}

interface Container {
  id: string
  bundle: string
  rootfs: Mount[]
  rootfsDir: string
  rootfsMounted: boolean
  pid: number
  init: Proc
  execs: Map<string, Proc>
}

export interface TaskServiceOptions {
  runtime: SandboxRuntime
  events: EventPublisher
  logger?: Logger
  mounter?: RootfsMounter
  /** Called after Shutdown was answered and the sandbox is gone (the daemon exits there). */
  onShutdown?: () => void | Promise<void>
}

function notFound(what: string): KatarefError {
  return new KatarefError(`${what}: not found`, Code.NOT_FOUND)
}

function ts(d: Date | undefined): Timestamp | undefined {
  return d ? timestampFromDate(d) : undefined
}

export class TaskService {
  readonly containers = new Map<string, Container>()
  private readonly runtime: SandboxRuntime
  private readonly events: EventPublisher
  private readonly log: Logger
  private readonly mounter: RootfsMounter
  private sandboxDown: Promise<void> | undefined
  private shuttingDown = false

  constructor(private readonly opts: TaskServiceOptions) {
    this.runtime = opts.runtime
    this.events = opts.events
    this.log = (opts.logger ?? nullLogger).child({ component: 'task-service' })
    this.mounter = opts.mounter ?? systemMounter
  }

  private container(id: string): Container {
    const c = this.containers.get(id)
    if (!c) throw notFound(`container ${id}`)
    return c
  }

  private proc(id: string, execId: string): Proc {
    const c = this.container(id)
    if (!execId) return c.init
    const p = c.execs.get(execId)
    if (!p) throw notFound(`exec ${execId} of container ${id}`)
    return p
  }

  private newProc(containerId: string, execId: string, io: { stdin: string; stdout: string; stderr: string; terminal: boolean }, pid: number): Proc {
    let markExited!: () => void
    const exited = new Promise<void>((r) => (markExited = r))
    return { containerId, execId, pid, status: Status.CREATED, exitStatus: 0, exitedAt: undefined, ...io, stdinClosed: false, exited, markExited }
  }

  /** The ttrpc handlers. Methods not listed answer 12 UNIMPLEMENTED. */
  handlers(): Partial<ServiceImpl<typeof Task>> {
    return {
      create: async (req) => {
        const id = req.id
        if (this.containers.has(id)) throw new KatarefError(`container ${id}: already exists`, Code.ALREADY_EXISTS)
        this.log.info({ id, bundle: req.bundle, rootfs: req.rootfs.length, terminal: req.terminal }, 'Create')
        let spec: OciSpecJson
        try {
          spec = JSON.parse(await readFile(join(req.bundle, 'config.json'), 'utf8')) as OciSpecJson
        } catch (e) {
          throw new KatarefError(`create ${id}: read ${req.bundle}/config.json: ${errorMessage(e)}`, Code.INVALID_ARGUMENT)
        }
        const rootPath = spec.root?.path ?? 'rootfs'
        const rootfsDir = isAbsolute(rootPath) ? rootPath : join(req.bundle, rootPath)
        let mounted = false
        try {
          if (req.rootfs.length > 0) {
            await this.mounter.mount(req.rootfs, rootfsDir)
            mounted = true
          }
          const { pid } = await this.runtime.createContainer({ containerId: id, bundle: req.bundle, spec, rootfsDir })
          const io = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }
          const c: Container = { id, bundle: req.bundle, rootfs: [...req.rootfs], rootfsDir, rootfsMounted: mounted, pid, init: this.newProc(id, '', io, pid), execs: new Map() }
          this.containers.set(id, c)
          this.events.publish(TOPIC.create, TaskCreateSchema, {
            containerId: id, bundle: req.bundle, rootfs: req.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target, options: m.options })),
            io: io, checkpoint: req.checkpoint, pid,
          })
          return { pid }
        } catch (e) {
          if (mounted) await this.mounter.unmount(rootfsDir)
          this.log.warn({ id, err: errorMessage(e) }, 'Create failed')
          if (this.containers.size === 0) await this.stopSandbox()
          throw e
        }
      },

      start: async (req) => {
        const c = this.container(req.id)
        const p = this.proc(req.id, req.execId)
        if (p.status !== Status.CREATED) throw new KatarefError(`${req.execId ? `exec ${req.execId}` : `container ${req.id}`}: already started`, Code.FAILED_PRECONDITION)
        this.log.info({ id: req.id, execId: req.execId }, 'Start')
        if (p.execId) await this.runtime.execProcess(c.id, p.execId, p.spec ?? {})
        else await this.runtime.startContainer(c.id)
        p.status = Status.RUNNING
        this.startIo(p)
        if (p.execId) this.events.publish(TOPIC.execStarted, TaskExecStartedSchema, { containerId: c.id, execId: p.execId, pid: p.pid })
        else this.events.publish(TOPIC.start, TaskStartSchema, { containerId: c.id, pid: p.pid })
        return { pid: p.pid }
      },

      state: (req) => {
        const c = this.container(req.id)
        const p = this.proc(req.id, req.execId)
        return {
          id: req.id, bundle: c.bundle, pid: p.pid, status: p.status, stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal,
          exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt), execId: p.execId,
        }
      },

      wait: async (req) => {
        const p = this.proc(req.id, req.execId)
        await p.exited
        return { exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt) }
      },

      kill: async (req) => {
        const p = this.proc(req.id, req.execId)
        this.log.info({ id: req.id, execId: req.execId, signal: req.signal, all: req.all }, 'Kill')
        if (p.status === Status.STOPPED) return {}
        await this.runtime.signalProcess(req.id, p.execId, req.signal, req.all)
        return {}
      },

      exec: (req) => {
        const c = this.container(req.id)
        if (!req.execId || c.execs.has(req.execId)) throw new KatarefError(`exec ${req.execId} of container ${req.id}: already exists`, Code.ALREADY_EXISTS)
        if (c.init.status === Status.STOPPED) throw new KatarefError(`container ${req.id} is stopped`, Code.FAILED_PRECONDITION)
        let spec: OciProcessJson
        try {
          spec = JSON.parse(Buffer.from(req.spec?.value ?? new Uint8Array()).toString('utf8')) as OciProcessJson
        } catch (e) {
          throw new KatarefError(`exec ${req.execId}: process spec is not JSON: ${errorMessage(e)}`, Code.INVALID_ARGUMENT)
        }
        const p = this.newProc(c.id, req.execId, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }, c.pid)
        p.spec = spec
        c.execs.set(req.execId, p)
        this.log.info({ id: req.id, execId: req.execId, args: spec.args }, 'Exec')
        this.events.publish(TOPIC.execAdded, TaskExecAddedSchema, { containerId: c.id, execId: req.execId })
        return {}
      },

      closeIO: async (req) => {
        const p = this.proc(req.id, req.execId)
        if (!req.stdin || p.stdinClosed) return {}
        p.stdinClosed = true
        if (p.status === Status.RUNNING) await this.closeStdin(p)
        // CREATED: done right after Start; STOPPED: nothing to close.
        return {}
      },

      pids: (req) => {
        const c = this.container(req.id)
        return { processes: [{ pid: c.pid }] }
      },

      delete: async (req) => {
        const c = this.container(req.id)
        const p = this.proc(req.id, req.execId)
        if (p.status === Status.RUNNING) throw new KatarefError(`${req.execId ? `exec ${req.execId}` : `container ${req.id}`} is still running`, Code.FAILED_PRECONDITION)
        this.log.info({ id: req.id, execId: req.execId }, 'Delete')
        p.stdinRelay?.close()
        // A Wait on a process that never started must not hang once it is deleted.
        p.markExited()
        if (p.execId) {
          c.execs.delete(p.execId)
          return { pid: p.pid, exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt) }
        }
        for (const e of c.execs.values()) {
          e.stdinRelay?.close()
          e.markExited()
        }
        this.containers.delete(c.id)
        try {
          await this.runtime.removeContainer(c.id)
        } catch (e) {
          this.log.warn({ id: c.id, err: errorMessage(e) }, 'RemoveContainer failed')
        }
        if (c.rootfsMounted) await this.mounter.unmount(c.rootfsDir)
        if (this.containers.size === 0) await this.stopSandbox()
        this.events.publish(TOPIC.delete, TaskDeleteSchema, { containerId: c.id, pid: p.pid, exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt), id: '' })
        return { pid: p.pid, exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt) }
      },

      connect: (req) => {
        const c = this.containers.get(req.id)
        return { shimPid: process.pid, taskPid: c?.pid ?? 0 }
      },

      shutdown: (req) => {
        if (this.containers.size > 0 && !req.now) {
          this.log.info({ containers: [...this.containers.keys()] }, 'Shutdown: tasks still present, keep serving')
          return {}
        }
        if (!this.shuttingDown) {
          this.shuttingDown = true
          this.log.info({ now: req.now }, 'Shutdown')
          // Answer first; the daemon exits in onShutdown.
          setImmediate(() => {
            void (async () => {
              try {
                await this.stopSandbox()
                await this.events.flush()
              } finally {
                await this.opts.onShutdown?.()
              }
            })()
          })
        }
        return {}
      },
    }
  }

  /** Tears the sandbox down once (idempotent). */
  stopSandbox(): Promise<void> {
    this.sandboxDown ??= this.runtime.shutdown().catch((e) => this.log.warn({ err: errorMessage(e) }, 'sandbox shutdown failed'))
    return this.sandboxDown
  }

  private async closeStdin(p: Proc): Promise<void> {
    if (p.stdinRelay) {
      // The relay sees EOF when containerd closes its writer; give it a moment to pass the rest on.
      await new Promise((r) => setTimeout(r, 100))
      p.stdinRelay.close()
    }
    try {
      await this.runtime.closeStdin(p.containerId, p.execId || p.containerId)
    } catch (e) {
      this.log.debug({ id: p.containerId, execId: p.execId, err: errorMessage(e) }, 'CloseStdin failed')
    }
  }

  private startIo(p: Proc): void {
    const cid = p.containerId
    const eid = p.execId || cid
    const log = this.log.child({ id: cid, execId: p.execId })
    const out = copyOutput((len) => this.runtime.readStdout(cid, eid, len), p.stdout, log, 'stdout')
    const err = p.terminal ? Promise.resolve() : copyOutput((len) => this.runtime.readStderr(cid, eid, len), p.stderr, log, 'stderr')
    if (p.stdin && !p.stdinClosed) {
      p.stdinRelay = relayStdin(p.stdin, (d) => this.runtime.writeStdin(cid, eid, d), async () => {
        if (!p.stdinClosed) {
          p.stdinClosed = true
          await this.runtime.closeStdin(cid, eid)
        }
      }, log)
    } else if (p.stdinClosed) {
      void this.closeStdin(p)
    }
    void (async () => {
      let status: number
      try {
        status = await this.runtime.waitProcess(cid, eid)
      } catch (e) {
        log.warn({ err: errorMessage(e) }, 'WaitProcess failed; reporting exit 255')
        status = 255
      }
      // Output completeness: every byte written and the FIFOs closed before anyone hears of the exit.
      await Promise.all([out, err])
      p.stdinRelay?.close()
      p.exitStatus = status >>> 0
      p.exitedAt = new Date()
      p.status = Status.STOPPED
      log.info({ exitStatus: p.exitStatus }, 'process exited')
      this.events.publish(TOPIC.exit, TaskExitSchema, { containerId: cid, id: p.execId || cid, pid: p.pid, exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt) })
      p.markExited()
    })()
  }
}
