// Events read from QMP are kept until somebody takes them (spec §12.6 fixed: never discarded).
// A waiter registered with `wait` consumes the first event its predicate accepts; any other
// event stays queued for later waiters or `take`/`drain`.
import { DeadlineError } from '../../../../types/errors.ts'
import { QmpAbortedError } from './qmp-errors.ts'
import type { QmpEvent } from './qmp-types.ts'
import { settleAfter, type Settle } from './settle.ts'

export type EventPredicate = (e: QmpEvent) => boolean

export interface WaitOptions {
  /** Give up after this many ms (DeadlineError). Absent: wait until matched, aborted or closed. */
  timeoutMs?: number
  signal?: AbortSignal
  /** Name used in the deadline error (default `QMP event`). */
  what?: string
}

interface Waiter extends Settle<QmpEvent> {
  predicate: EventPredicate
}

export class EventQueue {
  private readonly events: QmpEvent[] = []
  private readonly waiters: Waiter[] = []
  private closedWith: Error | undefined

  /** Deliver an event: to the oldest waiter that accepts it, else to the queue. */
  push(e: QmpEvent): void {
    const i = this.waiters.findIndex((w) => safeMatch(w.predicate, e))
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1)
      w!.resolve(e)
      return
    }
    this.events.push(e)
  }

  /** Remove and return the oldest queued event the predicate accepts. */
  take(predicate: EventPredicate): QmpEvent | undefined {
    const i = this.events.findIndex((e) => safeMatch(predicate, e))
    return i >= 0 ? this.events.splice(i, 1)[0] : undefined
  }

  /** Remove and return every queued event the predicate accepts (all when absent). */
  drain(predicate: EventPredicate = () => true): QmpEvent[] {
    const out: QmpEvent[] = []
    for (let i = 0; i < this.events.length; ) {
      if (safeMatch(predicate, this.events[i]!)) out.push(...this.events.splice(i, 1))
      else i++
    }
    return out
  }

  /** Queued events, oldest first (a copy). */
  snapshot(): QmpEvent[] {
    return [...this.events]
  }

  get waiterCount(): number {
    return this.waiters.length
  }

  /** Resolve with a queued match at once, or with the first matching event to arrive. */
  wait(predicate: EventPredicate, opts: WaitOptions = {}): Promise<QmpEvent> {
    const queued = this.take(predicate)
    if (queued) return Promise.resolve(queued)
    if (this.closedWith) return Promise.reject(this.closedWith)
    const what = opts.what ?? 'QMP event'
    if (opts.signal?.aborted) return Promise.reject(new QmpAbortedError(`waiting for ${what}`, { cause: opts.signal.reason }))

    return new Promise<QmpEvent>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const cleanup = (): void => {
        if (timer) clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
      }
      const waiter: Waiter = { predicate, ...settleAfter(resolve, reject, cleanup) }
      const onAbort = (): void => waiter.reject(new QmpAbortedError(`waiting for ${what}`, { cause: opts.signal?.reason }))
      if (opts.timeoutMs !== undefined) {
        const ms = opts.timeoutMs
        timer = setTimeout(() => waiter.reject(new DeadlineError(`waiting for ${what}`, ms)), ms)
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  /** Fail every current and future waiter (stream closed). Queued events stay readable. */
  close(err: Error): void {
    this.closedWith ??= err
    for (const w of [...this.waiters]) w.reject(err)
  }
}

function safeMatch(p: EventPredicate, e: QmpEvent): boolean {
  try {
    return p(e)
  } catch {
    return false
  }
}
