// One container process (init or exec) as the agent sees it: the spawned launcher (see launcher.ts),
// its stdio relays, its exit cell in the reaper, and the host pid of the user process behind it.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { Code, KatarefError } from '../../types/errors.ts'
import type { Logger } from '../../types/logger.ts'
import { waitStatusFromNode } from './exit-code.ts'
import type { ExitCell, Reaper } from './reaper.ts'
import { ByteQueue } from './stdio.ts'
import { GUEST_BUSYBOX } from './launcher.ts'

export class ProcessError extends KatarefError {}

export function envObject(env: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of env) {
    const i = e.indexOf('=')
    if (i <= 0) continue
    out[e.slice(0, i)] = e.slice(i + 1)
  }
  return out
}

/** Children of a pid (CONFIG_PROC_CHILDREN), [] when gone. */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

export class ContainerProcess {
  readonly stdout = new ByteQueue()
  readonly stderr = new ByteQueue()
  readonly cell: ExitCell
  private released = false
  /** Resolves when the launcher reported its setup done on fd 3 (init processes only). */
  readonly ready: Promise<void>
  /** WaitProcess returned for it (the table entry goes once the output is drained too). */
  waited = false
  private stdinClosed = false

  private constructor(
    readonly execId: string,
    private readonly child: ChildProcess,
    readonly pid: number,
    reaper: Reaper,
    private readonly log: Logger,
  ) {
    this.cell = reaper.register(pid)
    child.stdout!.on('data', (b: Buffer) => this.stdout.push(b))
    child.stdout!.on('end', () => this.stdout.end())
    child.stderr!.on('data', (b: Buffer) => this.stderr.push(b))
    child.stderr!.on('end', () => this.stderr.end())
    child.stdin!.on('error', () => {})
    const ctl = child.stdio[3] as unknown as NodeJS.ReadWriteStream
    ctl.on('error', () => {})
    let ctlText = ''
    this.ready = new Promise<void>((resolve, reject) => {
      ctl.on('data', (b: Buffer) => {
        ctlText += b.toString()
        if (ctlText.includes('ready\n')) resolve()
      })
      this.cell.exited.then((code) => reject(new ProcessError(`process ${execId} exited with ${code} before its setup finished`, Code.FAILED_PRECONDITION, { execId, exitCode: code })))
    })
    this.ready.catch(() => {})
    child.on('exit', (code, signal) => {
      const exit = reaper.onReaped(pid, waitStatusFromNode(code, signal))
      log.info({ execId, pid, code, signal, exitCode: exit }, 'process exited')
    })
  }

  /** Spawns `busybox sh -c script` with the user's environment; the script waits on the gate. */
  static spawn(execId: string, script: string, env: string[], reaper: Reaper, log: Logger, busybox = GUEST_BUSYBOX): Promise<ContainerProcess> {
    return new Promise((resolve, reject) => {
      const child = spawn(busybox, ['sh', '-c', script, 'kataref-launch'], {
        env: envObject(env),
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
        cwd: '/',
      })
      child.once('error', (e) => reject(new ProcessError(`spawn launcher for ${execId}: ${e.message}`, Code.INTERNAL, { execId }, { cause: e })))
      child.once('spawn', () => resolve(new ContainerProcess(execId, child, child.pid!, reaper, log)))
    })
  }

  get exited(): boolean {
    return this.cell.code !== undefined
  }

  /** Lets the launcher go on (after its cgroup placement). */
  release(): void {
    if (this.released) return
    this.released = true
    const gate = this.child.stdio[3] as NodeJS.WritableStream
    gate.write('go\n')
  }

  get isReleased(): boolean {
    return this.released
  }

  /** Host pid of the user process (the launcher's first child), once it exists; else the launcher. */
  async userPid(deadlineMs = 5_000): Promise<number> {
    if (!this.released || this.exited) return this.pid
    const end = Date.now() + deadlineMs
    for (;;) {
      const kids = await childrenOf(this.pid)
      if (kids.length > 0) return kids[0]!
      if (this.exited || Date.now() > end) return this.pid
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  async signal(sig: number): Promise<void> {
    if (this.exited) return
    const target = await this.userPid()
    try {
      process.kill(target, sig)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new ProcessError(`signal ${sig} to pid ${target}: ${(e as Error).message}`, Code.INTERNAL, { pid: target, signal: sig }, { cause: e })
    }
  }

  kill(): void {
    try {
      this.child.kill('SIGKILL')
    } catch {}
  }

  async writeStdin(data: Uint8Array): Promise<number> {
    if (this.stdinClosed || this.exited) throw new ProcessError(`stdin of ${this.execId} is closed`, Code.FAILED_PRECONDITION, { execId: this.execId })
    const stdin = this.child.stdin!
    await new Promise<void>((resolve, reject) => stdin.write(Buffer.from(data), (e) => (e ? reject(e) : resolve())))
    return data.length
  }

  closeStdin(): void {
    if (this.stdinClosed) return
    this.stdinClosed = true
    this.child.stdin!.end()
  }
}
