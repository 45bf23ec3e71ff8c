// QMP client over any Node Duplex (the QMP unix socket, or an in-memory pair in tests).
// - connect: read the greeting, send `qmp_capabilities`.
// - execute: one command in flight at a time (a FIFO), each with its own deadline; the
//   response is matched by the `id` we put on the command.
// - events: every event line goes to an EventQueue; `waitForEvent` consumes the first match
//   and leaves all other events queued (spec §12.6 fixed).
import type { Duplex } from 'node:stream'
import { DeadlineError, InvalidInputError, errorMessage } from '../../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../../types/logger.ts'
import { EventQueue, type EventPredicate, type WaitOptions } from './event-queue.ts'
import type { FdSender } from './fd-passing.ts'
import { LineReader } from './line-reader.ts'
import { QmpAbortedError, QmpClosedError, QmpCommandError, QmpProtocolError } from './qmp-errors.ts'
import { isEvent, isGreeting, isResponse, type QmpEvent, type QmpGreeting } from './qmp-types.ts'
import { settleAfter, type Settle } from './settle.ts'

export interface QmpClientOptions {
  logger?: Logger
  /** Deadline for each command unless the call gives its own (spec §1: 5000 ms read timeout after connect). */
  commandTimeoutMs?: number
  /** Deadline for the greeting and `qmp_capabilities`. */
  handshakeTimeoutMs?: number
  /** Needed only for commands sent with `fds` (add-fd, getfd). */
  fdSender?: FdSender
}

export interface ExecuteOptions {
  timeoutMs?: number
  signal?: AbortSignal
  /** Descriptors passed with SCM_RIGHTS right before the command (add-fd / getfd). */
  fds?: readonly number[]
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 5000

interface InFlight extends Settle<unknown> {
  id: string
  command: string
}

export class QmpClient {
  private readonly reader = new LineReader()
  private readonly queue = new EventQueue()
  private readonly log: Logger
  private readonly commandTimeoutMs: number
  private readonly fdSender: FdSender | undefined
  private inFlight: InFlight | undefined
  private tail: Promise<unknown> = Promise.resolve()
  private nextId = 1
  private closed: Error | undefined
  private greetingWaiter: Settle<QmpGreeting> | undefined
  private greetingSeen: QmpGreeting | undefined

  private constructor(private readonly stream: Duplex, opts: QmpClientOptions) {
    validateOptions(opts)
    this.log = (opts.logger ?? nullLogger).child({ subsystem: 'qmp' })
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
    this.fdSender = opts.fdSender
    stream.on('data', (chunk: Buffer | string) => this.onData(chunk))
    stream.on('error', (err) => this.fail(new QmpClosedError(`stream error: ${err.message}`, { cause: err })))
    stream.on('close', () => this.fail(new QmpClosedError('stream closed')))
    stream.on('end', () => this.fail(new QmpClosedError('peer ended the stream')))
  }

  /** Read the greeting and negotiate capabilities (no `enable`, as runtime-rs). */
  static async connect(stream: Duplex, opts: QmpClientOptions = {}): Promise<QmpClient> {
    const c = new QmpClient(stream, opts)
    const handshakeMs = opts.handshakeTimeoutMs ?? c.commandTimeoutMs
    try {
      c.greeting = await c.readGreeting(handshakeMs)
      await c.execute('qmp_capabilities', undefined, { timeoutMs: handshakeMs })
    } catch (e) {
      c.close()
      throw e
    }
    return c
  }

  greeting!: QmpGreeting

  get isClosed(): boolean {
    return this.closed !== undefined
  }

  /**
   * Send one command and resolve with its `return` value. Commands are serialised: a call made
   * while another is in flight waits its turn (its deadline starts when it is sent).
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: ExecuteOptions = {}): Promise<T> {
    const run = this.tail.then(
      () => this.send(command, args, opts),
      () => this.send(command, args, opts),
    )
    this.tail = run.catch(() => undefined)
    return run as Promise<T>
  }

  /** Wait for the first event (queued or future) accepted by `predicate`; others stay queued. */
  waitForEvent(predicate: EventPredicate, opts: WaitOptions = {}): Promise<QmpEvent> {
    return this.queue.wait(predicate, opts)
  }

  /** Take (remove) the oldest queued event accepted by `predicate`, if any. */
  takeEvent(predicate: EventPredicate): QmpEvent | undefined {
    return this.queue.take(predicate)
  }

  /** Remove and return queued events (all, or those accepted by `predicate`). */
  drainEvents(predicate?: EventPredicate): QmpEvent[] {
    return this.queue.drain(predicate)
  }

  /** Queued events, oldest first, without removing them. */
  pendingEvents(): QmpEvent[] {
    return this.queue.snapshot()
  }

  /** Close the stream; pending and later calls fail with QmpClosedError. */
  close(): void {
    this.fail(new QmpClosedError('closed by client'))
    this.stream.destroy()
  }

  private async send(command: string, args: Record<string, unknown> | undefined, opts: ExecuteOptions): Promise<unknown> {
    if (this.closed) throw this.closed
    if (opts.signal?.aborted) throw new QmpAbortedError(command, { cause: opts.signal.reason })
    const id = `kataref-${this.nextId++}`
    const msg: Record<string, unknown> = { execute: command }
    if (args !== undefined) msg.arguments = args
    msg.id = id
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs

    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const done = (): void => {
        if (timer) clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        if (this.inFlight === entry) this.inFlight = undefined
      }
      const entry: InFlight = { id, command, ...settleAfter(resolve, reject, done) }
      const onAbort = (): void => entry.reject(new QmpAbortedError(command, { cause: opts.signal?.reason }))
      this.inFlight = entry
      timer = setTimeout(() => {
        this.log.warn({ command, id, timeoutMs }, 'QMP command deadline exceeded; a late response will be dropped')
        entry.reject(new DeadlineError(`QMP ${command}`, timeoutMs, { command }))
      }, timeoutMs)
      opts.signal?.addEventListener('abort', onAbort, { once: true })

      const write = async (): Promise<void> => {
        if (opts.fds && opts.fds.length > 0) {
          if (!this.fdSender) throw new QmpProtocolError(`${command} needs fd passing but no fdSender was configured`, { command })
          await this.fdSender.sendFds(opts.fds)
        }
        this.log.debug({ command, id, args }, 'QMP send')
        this.stream.write(JSON.stringify(msg) + '\n')
      }
      write().catch((e: unknown) => entry.reject(e instanceof Error ? e : new Error(String(e))))
    })
  }

  private readGreeting(timeoutMs: number): Promise<QmpGreeting> {
    if (this.greetingSeen) return Promise.resolve(this.greetingSeen)
    if (this.closed) return Promise.reject(this.closed)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined
        reject(new DeadlineError('QMP greeting', timeoutMs))
      }, timeoutMs)
      this.greetingWaiter = settleAfter(resolve, reject, () => clearTimeout(timer))
    })
  }

  private onData(chunk: Buffer | string): void {
    for (const line of this.reader.push(chunk)) {
      let m: unknown
      try {
        m = JSON.parse(line)
      } catch (e) {
        this.log.warn({ line, err: errorMessage(e) }, 'QMP: unparsable line ignored')
        continue
      }
      this.dispatch(m)
    }
  }

  private dispatch(m: unknown): void {
    if (isEvent(m)) {
      this.log.debug({ event: m.event, data: m.data }, 'QMP event')
      this.queue.push(m)
      return
    }
    if (isGreeting(m)) {
      this.greetingSeen = m
      const w = this.greetingWaiter
      this.greetingWaiter = undefined
      w?.resolve(m)
      return
    }
    if (isResponse(m)) {
      const f = this.inFlight
      const rid = (m as { id?: unknown }).id
      // QEMU omits `id` when it could not parse the command; such an answer belongs to the command in flight.
      if (!f || (rid !== undefined && rid !== f.id)) {
        this.log.warn({ id: rid, inFlight: f?.id }, 'QMP: response for no pending command dropped (late after deadline?)')
        return
      }
      if ('error' in m) f.reject(new QmpCommandError(f.command, m.error.class, m.error.desc))
      else f.resolve(m.return)
      return
    }
    this.log.warn({ message: m }, 'QMP: unknown message ignored')
  }

  private fail(err: Error): void {
    if (this.closed) return
    this.closed = err
    this.inFlight?.reject(err)
    this.greetingWaiter?.reject(err)
    this.greetingWaiter = undefined
    this.queue.close(err)
  }
}

function validateOptions(o: QmpClientOptions): void {
  for (const k of ['commandTimeoutMs', 'handshakeTimeoutMs'] as const) {
    const v = o[k]
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new InvalidInputError(`QmpClientOptions.${k}`, `must be a positive number of ms, got ${v}`)
  }
}
