// An undo stack: every completed step pushes how to undo itself; `run` undoes in reverse,
// logs and collects failures, and never throws (the original error is what the caller reports).
import { errorChain, formatErrorChain } from '../../dmverity/index.ts'
import type { Logger } from '../../types/logger.ts'

export interface UndoStep {
  label: string
  run: () => Promise<void>
}

export class Rollback {
  private steps: UndoStep[] = []

  push(label: string, run: () => Promise<void>): void {
    this.steps.push({ label, run })
  }

  pushAll(steps: readonly UndoStep[]): void {
    this.steps.push(...steps)
  }

  get length(): number {
    return this.steps.length
  }

  /** Hand the steps over (e.g. to a teardown record) and forget them. */
  take(): UndoStep[] {
    const s = this.steps
    this.steps = []
    return s
  }

  async run(log: Logger, what: string): Promise<string[]> {
    const failures: string[] = []
    for (const step of this.take().reverse()) {
      try {
        await step.run()
        log.debug({ step: step.label }, `${what}: undone`)
      } catch (e) {
        const msg = `${step.label}: ${formatErrorChain(e)}`
        failures.push(msg)
        log.warn({ step: step.label, err: errorChain(e) }, `${what}: undo failed`)
      }
    }
    return failures
  }
}
