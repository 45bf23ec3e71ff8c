// QemuVm: one qemu-system-x86_64 process in its own run dir (sockets, console log).
// start() returns once QEMU's sockets exist; stop() is idempotent (QMP quit, then SIGTERM, then
// SIGKILL) and removes the run dir. A process-exit/signal hook kills what is still running.
import { closeSync, constants, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, unlinkSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa, type ResultPromise } from 'execa'
import { DeadlineError, KatarefError, ToolError, Code, errorMessage } from '../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../types/logger.ts'
import { onExitCleanup } from './cleanup.ts'
import { LineReader } from './qmp/line-reader.ts'
import { buildQemuArgs, kernelCmdline, runDirPaths, type Accel, type QemuConfig, type QemuDisk, type QemuShare, type RunDirPaths } from './cmdline.ts'

/** The CPU advertises hardware virtualisation (vmx/svm) in /proc/cpuinfo. */
export function cpuHasVirtualization(cpuinfo?: string): boolean {
  let text = cpuinfo
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8')
    } catch {
      return false
    }
  }
  return /^flags\s*:.*\b(vmx|svm)\b/m.test(text)
}

/**
 * True when /dev/kvm can be opened read-write and the CPU has vmx/svm. The second check matters:
 * inside some VMs /dev/kvm exists and opens but KVM is unusable (QEMU aborts setting MSRs with
 * `-cpu host`, and other CPU models hang in the firmware).
 */
export function kvmAvailable(): boolean {
  try {
    const fd = openSync('/dev/kvm', constants.O_RDWR)
    closeSync(fd)
  } catch {
    return false
  }
  return cpuHasVirtualization()
}

/** KATAREF_ACCEL=kvm|tcg forces; otherwise KVM when usable. */
export function defaultAccel(): Accel {
  const env = process.env.KATAREF_ACCEL
  if (env === 'kvm' || env === 'tcg') return env
  return kvmAvailable() ? 'kvm' : 'tcg'
}

export interface QemuVmOptions {
  kernel: string
  initrd?: string
  /** Default: kernelCmdline(). */
  append?: string
  rootfs?: string | QemuDisk
  disks?: QemuDisk[]
  shares?: QemuShare[]
  smp?: number
  memoryMiB?: number
  accel?: Accel
  cpu?: string
  /** Run dir to use (created if missing, kept on stop except its sockets). Default: a fresh temp dir, removed on stop. */
  runDir?: string
  /** qemu-system-x86_64 path (default env KATAREF_QEMU or from PATH). */
  binary?: string
  extraArgs?: string[]
  noReboot?: boolean
  /** How long start() waits for the sockets (default 15 s). */
  startTimeoutMs?: number
  logger?: Logger
  /** Hot-plug bridges `pci-bridge-0..n-1` (cmdline.ts `pciBridges`). Default 0. */
  pciBridges?: number
  /** File-backed guest RAM (VM templates): see cmdline.ts `memoryBackend`. */
  memoryBackend?: { path: string; share: boolean }
  /** `-incoming` value (`defer` for a VM restored from a template). */
  incoming?: string
  /**
   * Leave qemu running when this process exits (`kataref run --keep`): no parent-death signal, no
   * exit hook, its own process group, stderr to `<runDir>/qemu.stderr`. stop() still works.
   */
  outliveOwner?: boolean
}

export interface QemuExit {
  exitCode: number | undefined
  signal: string | undefined
}

const MAX_SOCKET_PATH = 107
const STDERR_KEEP = 16 * 1024
const CONSOLE_KEEP = 256 * 1024

function setprivAvailable(): boolean {
  return existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv')
}

export class QemuVm {
  readonly runDir: string
  readonly paths: RunDirPaths
  readonly accel: Accel
  readonly args: string[]
  /** Resolves when the qemu process has exited (never rejects). */
  readonly exited: Promise<QemuExit>

  private readonly ownsRunDir: boolean
  private readonly opts: QemuVmOptions
  private readonly log: Logger
  private proc: ResultPromise | undefined
  private resolveExited!: (e: QemuExit) => void
  private exitInfo: QemuExit | undefined
  private stderrTail = ''
  private consoleSnapshot: string | undefined
  private stopping: Promise<void> | undefined
  private unregisterCleanup: (() => void) | undefined
  private startedAt = 0

  constructor(opts: QemuVmOptions) {
    this.opts = opts
    this.log = (opts.logger ?? nullLogger).child({ component: 'qemu' })
    this.accel = opts.accel ?? defaultAccel()
    if (opts.runDir) {
      this.runDir = resolve(opts.runDir)
      this.ownsRunDir = false
    } else {
      this.runDir = mkdtempSync(join(tmpdir(), 'kataref-vm-'))
      this.ownsRunDir = true
    }
    this.paths = runDirPaths(this.runDir)
    for (const s of this.sockets()) {
      if (Buffer.byteLength(s) > MAX_SOCKET_PATH) {
        throw new KatarefError(`socket path ${s} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter run dir`, Code.INVALID_ARGUMENT, { runDir: this.runDir })
      }
    }
    const rootfs: QemuDisk | undefined = typeof opts.rootfs === 'string' ? { path: opts.rootfs, readOnly: true, id: 'rootfs' } : opts.rootfs
    const config: QemuConfig = {
      accel: this.accel,
      cpu: opts.cpu,
      smp: opts.smp ?? 2,
      memoryMiB: opts.memoryMiB ?? 512,
      kernel: resolve(opts.kernel),
      initrd: opts.initrd ? resolve(opts.initrd) : undefined,
      append: opts.append ?? kernelCmdline(),
      rootfs,
      disks: opts.disks,
      shares: opts.shares,
      paths: this.paths,
      noReboot: opts.noReboot,
      extraArgs: opts.extraArgs,
      pciBridges: opts.pciBridges,
      memoryBackend: opts.memoryBackend,
      incoming: opts.incoming,
    }
    this.args = buildQemuArgs(config)
    this.exited = new Promise((r) => (this.resolveExited = r))
    // Last-chance cleanup (process exit, SIGINT/SIGTERM/SIGHUP): no qemu, socket or temp dir left.
    this.unregisterCleanup = opts.outliveOwner ? undefined : onExitCleanup(() => {
      const pid = this.proc?.pid
      if (pid !== undefined && this.exitInfo === undefined) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* already gone */
        }
      }
      this.removeRunFiles()
    })
  }

  private sockets(): string[] {
    return [this.paths.agentSocket, this.paths.debugSocket, this.paths.controlSocket, this.paths.qmpSocket]
  }

  get pid(): number | undefined {
    return this.proc?.pid
  }
  get agentSocketPath(): string {
    return this.paths.agentSocket
  }
  get qmpSocketPath(): string {
    return this.paths.qmpSocket
  }
  get debugSocketPath(): string {
    return this.paths.debugSocket
  }
  get consoleLogPath(): string {
    return this.paths.consoleLog
  }
  /** The process has exited. */
  get hasExited(): boolean {
    return this.exitInfo !== undefined
  }
  /** Milliseconds since start() spawned qemu. */
  get uptimeMs(): number {
    return this.startedAt ? Date.now() - this.startedAt : 0
  }

  /** The last `lines` lines of the serial console (works after stop, from a snapshot). */
  consoleTail(lines = 40): string {
    let text = this.consoleSnapshot
    if (text === undefined) {
      try {
        // Only the end of the file: the agent logs to the console and the file keeps growing.
        const fd = openSync(this.paths.consoleLog, 'r')
        try {
          const size = fstatSync(fd).size
          const len = Math.min(size, CONSOLE_KEEP)
          const buf = Buffer.alloc(len)
          readSync(fd, buf, 0, len, size - len)
          text = buf.toString('utf8')
        } finally {
          closeSync(fd)
        }
      } catch {
        text = ''
      }
    }
    return text.replace(/\r/g, '').split('\n').slice(-lines).join('\n')
  }

  /** QEMU's own stderr (last 16 KiB). */
  stderr(): string {
    return this.stderrTail
  }

  /** Spawns qemu and waits until its sockets exist. */
  async start(): Promise<void> {
    if (this.proc) throw new KatarefError('QemuVm.start called twice', Code.FAILED_PRECONDITION, { runDir: this.runDir })
    await mkdir(this.runDir, { recursive: true })
    for (const s of this.sockets()) rmSync(s, { force: true })
    const binary = this.opts.binary ?? process.env.KATAREF_QEMU ?? 'qemu-system-x86_64'
    // setpriv --pdeathsig: qemu dies with us even when we are SIGKILLed (no hook runs then).
    const outlive = this.opts.outliveOwner === true
    const [cmd, argv] = !outlive && setprivAvailable() ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', binary, ...this.args]] : [binary, this.args]
    this.log.info({ accel: this.accel, runDir: this.runDir, argv: [binary, ...this.args] }, 'starting qemu')
    this.startedAt = Date.now()
    const proc = outlive
      ? execa(cmd, argv, { stdin: 'ignore', stdout: 'ignore', stderr: { file: join(this.runDir, 'qemu.stderr') }, reject: false, buffer: false, cwd: this.runDir, cleanup: false, detached: true })
      : execa(cmd, argv, { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', reject: false, buffer: false, cwd: this.runDir, cleanup: true })
    if (outlive) proc.unref()
    this.proc = proc
    proc.stderr?.setEncoding('utf8')
    proc.stderr?.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-STDERR_KEEP)
    })
    void proc.then(
      (r) => this.onExit({ exitCode: r.exitCode, signal: r.signal }),
      (e: unknown) => this.onExit({ exitCode: undefined, signal: undefined }, e),
    )
    const pid = proc.pid

    const timeout = this.opts.startTimeoutMs ?? 15_000
    const deadline = Date.now() + timeout
    const sockets = this.sockets()
    while (!sockets.every((s) => existsSync(s))) {
      if (this.exitInfo) {
        const e = new ToolError(binary, `exited during start (code ${this.exitInfo.exitCode ?? '-'}, signal ${this.exitInfo.signal ?? '-'}): ${this.stderrTail.trim()}`, { runDir: this.runDir, args: this.args })
        await this.stop()
        throw e
      }
      if (Date.now() > deadline) {
        const e = new DeadlineError(`waiting for qemu sockets in ${this.runDir}`, timeout, { stderr: this.stderrTail })
        await this.stop()
        throw e
      }
      await sleep(10)
    }
    this.log.info({ pid, ms: Date.now() - this.startedAt }, 'qemu sockets ready')
  }

  private onExit(info: QemuExit, err?: unknown): void {
    if (this.exitInfo) return
    this.exitInfo = info
    this.log.info({ ...info, err: err ? errorMessage(err) : undefined }, 'qemu exited')
    this.resolveExited(info)
  }

  /** Sends QMP `quit` on the launcher's own monitor (raw JSON lines). Resolves false when it was not reachable. */
  private async qmpQuit(timeoutMs: number): Promise<boolean> {
    if (!existsSync(this.paths.controlSocket)) return false
    return new Promise((res) => {
      const sock = connect(this.paths.controlSocket)
      const reader = new LineReader()
      let stage = 0
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        sock.destroy()
        res(ok)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      sock.setEncoding('utf8')
      sock.on('error', () => done(false))
      sock.on('close', () => done(stage === 2))
      sock.on('data', (d: string) => {
        for (const line of reader.push(d)) {
          let msg: Record<string, unknown>
          try {
            msg = JSON.parse(line) as Record<string, unknown>
          } catch {
            continue
          }
          if (stage === 0 && 'QMP' in msg) {
            stage = 1
            sock.write('{"execute":"qmp_capabilities"}\n')
          } else if (stage === 1 && 'return' in msg) {
            stage = 2
            sock.write('{"execute":"quit"}\n')
          } else if (stage === 2 && 'return' in msg) {
            done(true)
          }
        }
      })
    })
  }

  private async waitExit(ms: number): Promise<boolean> {
    if (this.exitInfo) return true
    return Promise.race([this.exited.then(() => true), sleep(ms).then(() => false)])
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.proc?.pid
    if (pid === undefined || this.exitInfo) return
    try {
      process.kill(pid, sig)
    } catch {
      /* already gone */
    }
  }

  /** Stops the VM (idempotent): QMP quit, else SIGTERM, then SIGKILL; removes the run dir. */
  stop(opts: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.doStop(opts.graceMs ?? 3000)
    return this.stopping
  }

  private async doStop(graceMs: number): Promise<void> {
    if (this.proc && !this.exitInfo) {
      const quitSent = await this.qmpQuit(Math.min(graceMs, 2000))
      if (!(quitSent && (await this.waitExit(graceMs)))) {
        this.signal('SIGTERM')
        if (!(await this.waitExit(graceMs))) {
          this.signal('SIGKILL')
          await this.exited
        }
      }
    }
    if (this.proc) await this.exited
    this.cleanupFiles()
  }

  /** Kills qemu with SIGKILL at once (crash tests). The run dir stays until stop(). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.signal(signal)
  }

  private cleanupFiles(): void {
    try {
      this.consoleSnapshot = this.consoleTail(100_000)
    } catch {
      /* no console */
    }
    this.removeRunFiles()
    this.unregisterCleanup?.()
    this.unregisterCleanup = undefined
  }

  /** The run dir when we made it; otherwise only its sockets (the caller's dir stays). */
  private removeRunFiles(): void {
    if (this.ownsRunDir) {
      rmSync(this.runDir, { recursive: true, force: true })
      return
    }
    for (const s of this.sockets()) {
      try {
        unlinkSync(s)
      } catch {
        /* not there */
      }
    }
  }
}

/** Creates and starts a VM. */
export async function startQemuVm(opts: QemuVmOptions): Promise<QemuVm> {
  const vm = new QemuVm(opts)
  await vm.start()
  return vm
}
