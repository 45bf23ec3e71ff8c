// DebugConsole: the witness client for the guest's debug shell (virtio-serial port kataref.debug.0,
// host side <runDir>/debug.sock). Scenarios use it to observe the guest independently of the agent.
//
// Framing (the guest side is a plain non-interactive busybox sh reading the port; no prompt, no echo):
// for each command the host sends one self-delimiting line group
//
//   printf '%s\n' '@@KR:<id>:B'; /bin/sh -c '<cmd>' </dev/null 2>/tmp/.kr-<id>; printf '\n%s\n' "@@KR:<id>:E:$?";
//   cat /tmp/.kr-<id>; rm -f /tmp/.kr-<id>; printf '\n%s\n' '@@KR:<id>:Z'
//
// stdout is what lies between "B\n" and "\nE:<rc>\n", stderr between that and "\nZ\n". <id> is
// random per command, so output from earlier (timed-out) commands or stale probes is ignored. The
// command runs in its own `sh -c`, so a syntax error or `exit` cannot kill the serving shell, and
// its stdin is /dev/null so it cannot eat the following commands.
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeadlineError, KatarefError, Code, errorMessage } from '../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../types/logger.ts'

export interface DebugRunResult {
  stdout: string
  stderr: string
  exitCode: number
}

export interface DebugConsoleOptions {
  /** For error messages: the VM's serial console tail. */
  consoleTail?: () => string
  logger?: Logger
}

/** POSIX single-quote quoting. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** The text sent for one command (exported for tests). */
export function frameCommand(id: string, cmd: string): string {
  const err = `/tmp/.kr-${id}`
  return (
    `printf '%s\\n' '@@KR:${id}:B'; /bin/sh -c ${shellQuote(cmd)} </dev/null 2>${err}; ` +
    `printf '\\n%s\\n' "@@KR:${id}:E:$?"; cat ${err} 2>/dev/null; rm -f ${err}; printf '\\n%s\\n' '@@KR:${id}:Z'\n`
  )
}

/** Finds a complete framed result for `id` in `buf`; returns it and where it ended. */
export function parseFramed(buf: string, id: string): { result: DebugRunResult; end: number } | undefined {
  const begin = `@@KR:${id}:B\n`
  const b = buf.indexOf(begin)
  if (b < 0) return undefined
  const bodyStart = b + begin.length
  const endRe = new RegExp(`\\n@@KR:${id}:E:(\\d+)\\n`, 'g')
  endRe.lastIndex = bodyStart - 1
  const em = endRe.exec(buf)
  if (!em) return undefined
  const stdoutEnd = em.index
  const stderrStart = em.index + em[0].length
  const zMark = `\n@@KR:${id}:Z\n`
  const z = buf.indexOf(zMark, stderrStart - 1)
  if (z < 0) return undefined
  const stdout = stdoutEnd >= bodyStart ? buf.slice(bodyStart, stdoutEnd) : ''
  const stderr = z >= stderrStart ? buf.slice(stderrStart, z) : ''
  return { result: { stdout, stderr, exitCode: Number(em[1]) }, end: z + zMark.length }
}

export class DebugConsole {
  private sock: Socket | undefined
  private buf = ''
  private waiters = new Set<() => void>()
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false
  private readonly log: Logger

  constructor(
    readonly socketPath: string,
    private readonly opts: DebugConsoleOptions = {},
  ) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'debug-console' })
  }

  /** Connects and waits until the guest shell answers. */
  static async connect(socketPath: string, opts: DebugConsoleOptions & { timeoutMs?: number } = {}): Promise<DebugConsole> {
    const c = new DebugConsole(socketPath, opts)
    try {
      await c.waitReady(opts.timeoutMs ?? 60_000)
    } catch (e) {
      c.close()
      throw e
    }
    return c
  }

  private tail(): string {
    try {
      return this.opts.consoleTail?.() ?? ''
    } catch {
      return ''
    }
  }

  private async ensureConnected(): Promise<Socket> {
    if (this.closed) throw new KatarefError('debug console is closed', Code.FAILED_PRECONDITION, { socket: this.socketPath })
    if (this.sock && !this.sock.destroyed) return this.sock
    const sock = await new Promise<Socket>((res, rej) => {
      const s = connect(this.socketPath)
      s.once('connect', () => res(s))
      s.once('error', rej)
    }).catch((e: unknown) => {
      throw new KatarefError(`cannot connect to debug console ${this.socketPath}: ${errorMessage(e)}`, Code.UNAVAILABLE, { socket: this.socketPath }, { cause: e })
    })
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => {
      this.buf += d
      if (this.buf.length > 64 * 1024 * 1024) this.buf = this.buf.slice(-32 * 1024 * 1024)
      this.wake()
    })
    sock.on('close', () => this.wake())
    sock.on('error', (e) => this.log.debug({ err: errorMessage(e) }, 'debug socket error'))
    this.sock = sock
    return sock
  }

  /** Waits for a framed answer to `id`; rejects on deadline (or when the socket closes). */
  private waitFor(id: string, timeoutMs: number, what: string): Promise<DebugRunResult> {
    return new Promise((res, rej) => {
      const check = (): void => {
        const found = parseFramed(this.buf, id)
        if (found) {
          this.buf = this.buf.slice(found.end)
          finish()
          res(found.result)
        } else if (!this.sock || this.sock.destroyed) {
          finish()
          rej(new KatarefError(`debug console closed while ${what}\n--- console tail ---\n${this.tail()}`, Code.UNAVAILABLE, { socket: this.socketPath }))
        }
      }
      const timer = setTimeout(() => {
        finish()
        const tail = this.tail()
        rej(new DeadlineError(`${what} (debug console ${this.socketPath})\n--- console tail ---\n${tail}`, timeoutMs, { consoleTail: tail }))
      }, timeoutMs)
      const finish = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Waits until the shell answers; re-sends a probe every few seconds (stale answers are ignored). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let lastErr: unknown
    while (Date.now() < deadline) {
      const left = deadline - Date.now()
      try {
        await this.runUnqueued('true', Math.min(left, 3000), 'waiting for the guest debug shell')
        return
      } catch (e) {
        lastErr = e
        if (e instanceof KatarefError && e.code === Code.UNAVAILABLE) {
          // QEMU not listening yet, or the socket closed: reconnect after a pause.
          this.sock?.destroy()
          this.sock = undefined
          await sleep(Math.min(200, Math.max(0, deadline - Date.now())))
        }
      }
    }
    const tail = this.tail()
    throw new DeadlineError(`waiting for the guest debug shell on ${this.socketPath} (last: ${errorMessage(lastErr)})\n--- console tail ---\n${tail}`, timeoutMs, {
      consoleTail: tail,
    })
  }

  private async runUnqueued(cmd: string, timeoutMs: number, what: string): Promise<DebugRunResult> {
    const sock = await this.ensureConnected()
    const id = randomBytes(6).toString('hex')
    sock.write(frameCommand(id, cmd))
    return this.waitFor(id, timeoutMs, what)
  }

  /** Runs `cmd` with `sh -c` in the guest; commands are serialised. */
  run(cmd: string, opts: { timeoutMs?: number } = {}): Promise<DebugRunResult> {
    const timeoutMs = opts.timeoutMs ?? 30_000
    const p = this.queue.then(() => this.runUnqueued(cmd, timeoutMs, `running ${JSON.stringify(cmd.length > 200 ? cmd.slice(0, 200) + '…' : cmd)}`))
    this.queue = p.catch(() => undefined)
    return p
  }

  /** Like run, but rejects when the exit code is not 0 (message has stdout/stderr). */
  async check(cmd: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(cmd, opts)
    if (r.exitCode !== 0) {
      throw new KatarefError(`guest command ${JSON.stringify(cmd)} exited ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`, Code.UNKNOWN, { cmd, ...r })
    }
    return r.stdout
  }

  close(): void {
    this.closed = true
    this.sock?.destroy()
    this.sock = undefined
    this.wake()
  }

  /** Let every waiter re-check the buffer and the socket. */
  private wake(): void {
    for (const w of [...this.waiters]) w()
  }
}
