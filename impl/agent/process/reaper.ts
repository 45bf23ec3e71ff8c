// The agent's reaping model (spec §1). Every registered process (init or exec) has one exit cell:
// the reaper records the exit code once and wakes every waiter; WaitProcess waiters all receive the
// same value (the first one removes the process from its container's table, the others get the code
// through the shared promise — upstream's broadcast channel). A reaped pid nobody registered is
// logged as "child exited unexpectedly" and changes nothing.
//
// In the guest, libuv reaps the agent's own children by pid (child_process 'exit'); the agent does not
// call waitpid(-1) itself, because that would steal statuses libuv (and other agent code using
// child_process, e.g. mount helpers) waits for. Orphans of container processes are re-parented to the
// PID namespace's init, and past that to the guest's busybox init, which reaps them — so the agent
// need not be a child subreaper. `onReaped` is the single entry point both paths feed.
import type { Logger } from '../../types/logger.ts'
import { exitCodeOf, type WaitStatus } from './exit-code.ts'

export class ExitCell {
  private _code: number | undefined
  private resolve!: (code: number) => void
  readonly exited: Promise<number>
  constructor(readonly pid: number) {
    this.exited = new Promise((r) => (this.resolve = r))
  }
  get code(): number | undefined {
    return this._code
  }
  /** Records the exit code once; later calls are ignored (returns false). */
  settle(code: number): boolean {
    if (this._code !== undefined) return false
    this._code = code
    this.resolve(code)
    return true
  }
}

export class Reaper {
  private readonly cells = new Map<number, ExitCell>()
  /** Pids reaped without a registration (for tests and diagnostics). */
  readonly unexpected: number[] = []

  constructor(private readonly log?: Logger) {}

  register(pid: number): ExitCell {
    const existing = this.cells.get(pid)
    if (existing && existing.code === undefined) return existing
    const cell = new ExitCell(pid)
    this.cells.set(pid, cell)
    return cell
  }

  cell(pid: number): ExitCell | undefined {
    return this.cells.get(pid)
  }

  unregister(pid: number): void {
    this.cells.delete(pid)
  }

  /**
   * One reaped pid with its wait status. Returns the exit code recorded, or undefined when nothing
   * changed (unregistered pid, or a status that is not a termination).
   */
  onReaped(pid: number, status: WaitStatus): number | undefined {
    const cell = this.cells.get(pid)
    if (!cell) {
      this.unexpected.push(pid)
      this.log?.info({ pid, status }, 'child exited unexpectedly')
      return undefined
    }
    const code = exitCodeOf(status)
    if (code === undefined) {
      this.log?.debug({ pid, status }, 'wait status is not a termination; process stays running')
      return undefined
    }
    cell.settle(code)
    return code
  }

  /** A batch as one SIGCHLD loop iteration would see it: every entry processed, in order. */
  reapAll(batch: Iterable<[number, WaitStatus]>): (number | undefined)[] {
    return [...batch].map(([pid, st]) => this.onReaped(pid, st))
  }
}
