// A scripted fake QMP peer for unit tests and benches (like govmm's qmp_test.go): it sends a
// greeting, expects commands in the scripted order, answers each, and emits scripted events.
// Nothing here talks to QEMU. Every received command is recorded with the fds passed with it.
import type { Duplex } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { isDeepStrictEqual } from 'node:util'
import type { FdSender } from './fd-passing.ts'
import { LineReader } from './line-reader.ts'
import { memoryDuplexPair } from './memory-duplex.ts'
import type { QmpErrorBody, QmpEvent, QmpGreeting } from './qmp-types.ts'
import { errorMessage } from '../../../../types/errors.ts'

export interface ScriptedEvent {
  event: QmpEvent
  /** Delay after the reply (or after the previous event of the same step). Default 0 (same tick as the reply). */
  delayMs?: number
}

export interface ScriptStep {
  execute: string
  /** Exact arguments expected (deep equality; absent key ≠ undefined), or a checker that throws/returns false. */
  args?: Record<string, unknown> | ((args: Record<string, unknown> | undefined) => boolean | void)
  /** `return` value (default `{}`). Ignored when `error` is set. */
  returns?: unknown | ((args: Record<string, unknown> | undefined, fds: number[]) => unknown)
  error?: QmpErrorBody
  /** Do not answer at all (to exercise deadlines). */
  noReply?: boolean
  /** Delay before the reply. */
  replyDelayMs?: number
  /** Events emitted before the reply. */
  eventsBefore?: QmpEvent[]
  /** Events emitted after the reply. */
  events?: ScriptedEvent[]
}

export interface ReceivedCommand {
  execute: string
  arguments?: Record<string, unknown>
  id?: unknown
  fds: number[]
  at: number
}

export interface FakeQmpPeerOptions {
  greeting?: QmpGreeting | null
  /** Expect and answer `qmp_capabilities` automatically (default true). */
  autoCapabilities?: boolean
  /** Answer for commands that are not in the script (default: a GenericError reply plus a recorded failure). */
  onUnexpected?: (cmd: ReceivedCommand) => { returns?: unknown; error?: QmpErrorBody } | undefined
}

export const FAKE_GREETING: QmpGreeting = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'kataref-fake' }, capabilities: ['oob'] },
}

export class FakeQmpPeer {
  /** Give this to QmpClient.connect. */
  readonly clientSide: Duplex
  private readonly peerSide: Duplex
  private readonly reader = new LineReader()
  private readonly script: ScriptStep[] = []
  private pendingFds: number[] = []
  readonly received: ReceivedCommand[] = []
  readonly emitted: { event: QmpEvent; at: number }[] = []
  /** Script violations (wrong command, wrong args, extra commands). */
  readonly failures: string[] = []
  private readonly onUnexpected: FakeQmpPeerOptions['onUnexpected']

  constructor(opts: FakeQmpPeerOptions = {}) {
    ;[this.clientSide, this.peerSide] = memoryDuplexPair()
    this.onUnexpected = opts.onUnexpected
    if (opts.autoCapabilities ?? true) this.script.push({ execute: 'qmp_capabilities' })
    this.peerSide.on('data', (c: Buffer) => {
      for (const line of this.reader.push(c)) this.onLine(line)
    })
    this.peerSide.on('error', () => {})
    const greeting = opts.greeting === undefined ? FAKE_GREETING : opts.greeting
    if (greeting) setImmediate(() => this.send(greeting))
  }

  /** Append a step to the script. */
  expect(step: ScriptStep): this {
    this.script.push(step)
    return this
  }

  /** Steps not yet consumed. */
  get remaining(): readonly ScriptStep[] {
    return this.script
  }

  /** Command names received, in order (qmp_capabilities included). */
  get commands(): string[] {
    return this.received.map((r) => r.execute)
  }

  /** Emit an event now. */
  emit(event: QmpEvent): void {
    this.emitted.push({ event, at: performance.now() })
    this.send(event)
  }

  /** An FdSender that records fds for the next command instead of sendmsg(2). */
  readonly fdSender: FdSender = {
    sendFds: async (fds) => {
      this.pendingFds.push(...fds)
    },
  }

  /** Throws if the script was not followed or not used up. */
  assertDone(): void {
    const problems = [...this.failures]
    if (this.script.length > 0) problems.push(`unconsumed steps: ${this.script.map((s) => s.execute).join(', ')}`)
    if (problems.length > 0) throw new Error(`fake QMP peer: ${problems.join('; ')}`)
  }

  close(): void {
    this.peerSide.end()
  }

  private send(m: unknown): void {
    if (!this.peerSide.destroyed && this.peerSide.writable) this.peerSide.write(JSON.stringify(m) + '\r\n')
  }

  private onLine(line: string): void {
    let parsed: { execute?: string; arguments?: Record<string, unknown>; id?: unknown }
    try {
      parsed = JSON.parse(line)
    } catch {
      this.failures.push(`unparsable line ${line}`)
      return
    }
    const cmd: ReceivedCommand = { execute: String(parsed.execute), fds: this.pendingFds, at: performance.now() }
    if (parsed.arguments !== undefined) cmd.arguments = parsed.arguments
    if (parsed.id !== undefined) cmd.id = parsed.id
    this.pendingFds = []
    this.received.push(cmd)
    const reply = (body: Record<string, unknown>): void => this.send(cmd.id === undefined ? body : { ...body, id: cmd.id })

    const step = this.script[0]
    const mismatch = step ? this.mismatch(step, cmd) : `unexpected command ${cmd.execute} (script empty)`
    if (mismatch) {
      const alt = this.onUnexpected?.(cmd)
      if (alt) {
        reply(alt.error ? { error: alt.error } : { return: alt.returns ?? {} })
        return
      }
      this.failures.push(mismatch)
      reply({ error: { class: 'GenericError', desc: `fake peer: ${mismatch}` } })
      return
    }
    this.script.shift()
    const s = step!
    void this.play(s, cmd, reply)
  }

  private async play(s: ScriptStep, cmd: ReceivedCommand, reply: (b: Record<string, unknown>) => void): Promise<void> {
    for (const e of s.eventsBefore ?? []) this.emit(e)
    if (s.replyDelayMs) await sleep(s.replyDelayMs)
    if (!s.noReply) {
      if (s.error) reply({ error: s.error })
      else {
        const ret = typeof s.returns === 'function' ? (s.returns as (a: unknown, f: number[]) => unknown)(cmd.arguments, cmd.fds) : s.returns
        reply({ return: ret ?? {} })
      }
    }
    for (const e of s.events ?? []) {
      if (e.delayMs) await sleep(e.delayMs)
      this.emit(e.event)
    }
  }

  private mismatch(step: ScriptStep, cmd: ReceivedCommand): string | undefined {
    if (step.execute !== cmd.execute) return `expected ${step.execute}, got ${cmd.execute} ${JSON.stringify(cmd.arguments ?? {})}`
    if (step.args === undefined) return undefined
    if (typeof step.args === 'function') {
      try {
        return step.args(cmd.arguments) === false ? `${cmd.execute}: arguments rejected: ${JSON.stringify(cmd.arguments)}` : undefined
      } catch (e) {
        return `${cmd.execute}: ${errorMessage(e)}`
      }
    }
    return isDeepStrictEqual(step.args, cmd.arguments ?? {})
      ? undefined
      : `${cmd.execute}: expected arguments ${JSON.stringify(step.args)}, got ${JSON.stringify(cmd.arguments ?? {})}`
  }
}

// The global setTimeout (not node:timers/promises), so vi.useFakeTimers also drives scripted delays.
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
