// Containers and their processes in the guest (issue 5): CreateContainer spawns the init launcher
// (gated), places it in the container cgroup (only when the spec has linux.resources, spec §2) and sets
// the limits; StartContainer releases it; ExecProcess joins the init's namespaces, its pid applied to
// `<cgroup>/init` when that subcgroup exists (4e3d257dc0); WaitProcess returns 128+signal for a signal
// death (c2d737c9d7) and the same value to every concurrent waiter; RemoveContainer kills everything,
// waits, and removes the cgroup tree. Storage (rootfs layers) is done before by the storage code.
import { stat } from 'node:fs/promises'
import { Code, InvalidInputError, KatarefError } from '../types/errors.ts'
import type { Logger } from '../types/logger.ts'
import type { Spec, Process as OciProcess } from '../gen/oci_pb.ts'
import { CgroupfsManager, GUEST_CGROUP_ROOT } from './cgroups/manager.ts'
import { cgroupfsCpath } from './cgroups/paths.ts'
import { ContainerProcess } from './process/process.ts'
import { execLaunchScript, initLaunchScript, GUEST_BUSYBOX } from './process/launcher.ts'
import { Reaper } from './process/reaper.ts'
import { scopedJoin, scopedMkdirAll } from './safe-path/index.ts'

export class ContainerError extends KatarefError {}

export type ContainerStatus = 'created' | 'running' | 'stopped'

export interface ContainerManagerOptions {
  /** Directory holding `<cid>/rootfs` when the spec gives no root path. */
  sharedContainersDir: string
  cgroupRoot?: string
  busybox?: string
}

export class Container {
  status: ContainerStatus = 'created'
  readonly execs = new Map<string, ContainerProcess>()
  constructor(
    readonly id: string,
    readonly spec: Spec,
    readonly rootfs: string,
    readonly cgroup: CgroupfsManager | undefined,
    readonly init: ContainerProcess,
  ) {}

  /** exec_id "" (and the init's own exec id) address the init process. */
  process(execId: string): ContainerProcess | undefined {
    if (execId === '' || execId === this.init.execId) return this.init
    return this.execs.get(execId)
  }
}

function userOf(p: OciProcess): { uid: number; gid: number } {
  return { uid: p.User?.UID ?? 0, gid: p.User?.GID ?? 0 }
}

export class ContainerManager {
  readonly containers = new Map<string, Container>()
  readonly reaper: Reaper

  constructor(
    private readonly opts: ContainerManagerOptions,
    private readonly log: Logger,
  ) {
    this.reaper = new Reaper(log)
  }

  get(cid: string): Container {
    const c = this.containers.get(cid)
    if (!c) throw new ContainerError(`container ${cid} not found`, Code.NOT_FOUND, { containerId: cid })
    return c
  }

  private proc(cid: string, execId: string): ContainerProcess {
    const p = this.get(cid).process(execId)
    if (!p) throw new ContainerError(`process ${execId} of container ${cid} not found`, Code.NOT_FOUND, { containerId: cid, execId })
    return p
  }

  private readonly creating = new Set<string>()

  async create(cid: string, execId: string, spec: Spec | undefined): Promise<Container> {
    if (this.containers.has(cid) || this.creating.has(cid)) throw new ContainerError(`container ${cid} already exists`, Code.ALREADY_EXISTS, { containerId: cid })
    this.creating.add(cid)
    try {
      return await this.createLocked(cid, execId, spec)
    } finally {
      this.creating.delete(cid)
    }
  }

  private async createLocked(cid: string, execId: string, spec: Spec | undefined): Promise<Container> {
    if (!spec?.Process || spec.Process.Args.length === 0) throw new InvalidInputError('OCI.Process', 'missing or without args', { containerId: cid })
    const rootfs = spec.Root?.Path || `${this.opts.sharedContainersDir}/${cid}/rootfs`
    const st = await stat(rootfs).catch(() => undefined)
    if (!st?.isDirectory()) throw new ContainerError(`rootfs ${rootfs} of container ${cid} is not a directory`, Code.FAILED_PRECONDITION, { containerId: cid, rootfs })
    const p = spec.Process
    if (p.Terminal) this.log.warn({ containerId: cid }, 'terminal requested: not supported yet, stdio stays on pipes')
    const { uid, gid } = userOf(p)
    const cwdHostPath = await scopedJoin(rootfs, p.Cwd || '/')
    const resources = spec.Linux?.Resources
    let cgroup: CgroupfsManager | undefined
    if (resources) {
      cgroup = new CgroupfsManager(cgroupfsCpath(spec.Linux?.CgroupsPath ?? '', cid), { root: this.opts.cgroupRoot ?? GUEST_CGROUP_ROOT })
      await cgroup.create()
    }
    const bb = this.opts.busybox ?? GUEST_BUSYBOX
    // Bind mounts (emptyDirs, shared files): destinations resolved inside the rootfs, made if missing.
    const binds: { source: string; destination: string; readonly: boolean }[] = []
    for (const m of spec.Mounts ?? []) {
      if (m.type !== 'bind' && !m.options.includes('bind') && !m.options.includes('rbind')) continue
      const srcSt = await stat(m.source).catch(() => undefined)
      if (!srcSt) throw new ContainerError(`mount source ${m.source} for ${m.destination} does not exist`, Code.FAILED_PRECONDITION, { containerId: cid, source: m.source })
      const destination = srcSt.isDirectory() ? (await scopedMkdirAll(rootfs, m.destination, 0o755)).path : await scopedJoin(rootfs, m.destination)
      binds.push({ source: m.source, destination, readonly: m.options.includes('ro') })
    }
    const devices = (spec.Linux?.Devices ?? [])
      .filter((d) => d.Type === 'b' || d.Type === 'c')
      .map((d) => ({ path: d.Path, type: d.Type as 'b' | 'c', major: Number(d.Major), minor: Number(d.Minor), mode: d.FileMode || 0o666 }))
    const script = initLaunchScript({ args: p.Args, env: p.Env, cwdHostPath, uid, gid, rootfs, hostname: spec.Hostname, readonlyRootfs: spec.Root?.Readonly ?? false, busybox: bb, binds, devices })
    const init = await ContainerProcess.spawn(execId || cid, script, p.Env, this.reaper, this.log, bb)
    try {
      if (cgroup) {
        await cgroup.apply(init.pid)
        await cgroup.set(resources)
      }
    } catch (e) {
      init.kill()
      await init.cell.exited
      await cgroup?.destroy().catch(() => {})
      throw e
    }
    const c = new Container(cid, spec, rootfs, cgroup, init)
    this.containers.set(cid, c)
    init.cell.exited.then(() => (c.status = 'stopped'))
    this.log.info({ containerId: cid, pid: init.pid, cgroup: cgroup?.dir, rootfs }, 'container created')
    return c
  }

  async start(cid: string): Promise<void> {
    const c = this.get(cid)
    if (c.status !== 'created') throw new ContainerError(`container ${cid} is ${c.status}, not created`, Code.FAILED_PRECONDITION, { containerId: cid })
    c.init.release()
    c.status = 'running'
    // Returns once the init's namespaces, mounts and chroot are set up and the user program is being exec'd.
    await c.init.ready
  }

  async exec(cid: string, execId: string, p: OciProcess | undefined): Promise<ContainerProcess> {
    const c = this.get(cid)
    if (!p || p.Args.length === 0) throw new InvalidInputError('process', 'missing or without args', { containerId: cid, execId })
    if (execId === '' || c.process(execId)) throw new ContainerError(`exec id ${JSON.stringify(execId)} already used in container ${cid}`, Code.ALREADY_EXISTS, { containerId: cid, execId })
    if (c.status !== 'running') throw new ContainerError(`container ${cid} is ${c.status}, not running`, Code.FAILED_PRECONDITION, { containerId: cid })
    const initPid = await c.init.userPid()
    const { uid, gid } = userOf(p)
    const cwdHostPath = await scopedJoin(c.rootfs, p.Cwd || '/')
    const bb = this.opts.busybox ?? GUEST_BUSYBOX
    const proc = await ContainerProcess.spawn(execId, execLaunchScript({ args: p.Args, env: p.Env, cwdHostPath, uid, gid, initPid, busybox: bb }), p.Env, this.reaper, this.log, bb)
    try {
      // Only with linux.resources (spec §2); set() is never called for exec processes.
      if (c.cgroup) await c.cgroup.apply(proc.pid)
    } catch (e) {
      proc.kill()
      await proc.cell.exited
      throw e
    }
    c.execs.set(execId, proc)
    proc.release()
    return proc
  }

  /** WaitProcess: every concurrent waiter gets the same code; the first removes an exec from the table. */
  async wait(cid: string, execId: string): Promise<number> {
    const c = this.get(cid)
    const p = this.proc(cid, execId)
    const code = await p.cell.exited
    p.waited = true
    this.forgetIfDone(c, p)
    return code
  }

  /**
   * An exec leaves the table once it was waited for AND a reader got the EOF reply on both stdout and
   * stderr, so a shim that reads the output after (or while) WaitProcess returns still gets all of it.
   * Streams nobody reads keep the entry until RemoveContainer.
   */
  private forgetIfDone(c: Container, p: ContainerProcess): void {
    if (p === c.init || !p.waited || !p.stdout.eofDelivered || !p.stderr.eofDelivered) return
    if (c.execs.get(p.execId) === p) {
      c.execs.delete(p.execId)
      this.reaper.unregister(p.pid)
    }
  }

  async signal(cid: string, execId: string, sig: number): Promise<void> {
    const c = this.get(cid)
    const p = this.proc(cid, execId)
    // A created (not yet started) init has no user process: only the launcher can be signalled.
    if (p === c.init && !p.isReleased) {
      if (sig === 9 || sig === 15) p.kill()
      return
    }
    await p.signal(sig)
  }

  writeStdin(cid: string, execId: string, data: Uint8Array): Promise<number> {
    return this.proc(cid, execId).writeStdin(data)
  }
  readStdout(cid: string, execId: string, len: number): Promise<Uint8Array> {
    return this.readStream(cid, execId, len, 'stdout')
  }
  readStderr(cid: string, execId: string, len: number): Promise<Uint8Array> {
    return this.readStream(cid, execId, len, 'stderr')
  }
  private async readStream(cid: string, execId: string, len: number, which: 'stdout' | 'stderr'): Promise<Uint8Array> {
    const c = this.get(cid)
    const p = this.proc(cid, execId)
    const data = await p[which].read(len)
    this.forgetIfDone(c, p)
    return data
  }
  closeStdin(cid: string, execId: string): void {
    this.proc(cid, execId).closeStdin()
  }

  /** Kills every process of the container, waits (timeout seconds, 0 = forever), removes the cgroup tree. */
  async remove(cid: string, timeoutSec = 0): Promise<void> {
    const c = this.get(cid)
    const procs = [c.init, ...c.execs.values()]
    const killAll = async () => {
      if (c.cgroup) await c.cgroup.killAll()
      for (const p of procs) {
        if (p.isReleased) await p.signal(9).catch(() => {})
        p.kill()
      }
    }
    await killAll()
    const all = Promise.all(procs.map((p) => p.cell.exited))
    // timeout 0 = wait forever (protocols.md §2.4); everything got SIGKILL (cgroup.kill) just above.
    const limitMs = timeoutSec > 0 ? timeoutSec * 1000 : Infinity
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([all.then(() => false), ...(limitMs === Infinity ? [] : [new Promise<boolean>((r) => (timer = setTimeout(() => r(true), limitMs)))])])
    clearTimeout(timer)
    if (timedOut) throw new ContainerError(`container ${cid}: processes still running after ${limitMs} ms`, Code.DEADLINE_EXCEEDED, { containerId: cid })
    if (c.cgroup) await c.cgroup.destroy()
    for (const p of procs) this.reaper.unregister(p.pid)
    this.containers.delete(cid)
    this.log.info({ containerId: cid }, 'container removed')
  }

  async removeAll(): Promise<void> {
    for (const cid of [...this.containers.keys()]) await this.remove(cid, 10).catch((e) => this.log.warn({ containerId: cid, err: String(e) }, 'remove container failed'))
  }
}
