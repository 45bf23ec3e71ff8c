// Exit code derivation (upstream c2d737c9d7, src/agent/src/signal.rs): a normal exit with status c
// gives c; death by signal s gives 128 + s (core-dump flag ignored); any other wait status
// (stopped, continued, still alive) gives no exit code and the process is NOT marked as exited.
import { constants } from 'node:os'

/** Linux wait(2) status decoding, as the <sys/wait.h> macros do it. */
export type WaitStatus =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: number; coreDumped: boolean }
  | { kind: 'stopped'; signal: number }
  | { kind: 'continued' }
  | { kind: 'still-alive' }

/** Decodes a raw status word from waitpid; `null` (waitpid returned 0, WNOHANG) means still alive. */
export function decodeWaitStatus(raw: number | null): WaitStatus {
  if (raw === null) return { kind: 'still-alive' }
  if (raw === 0xffff) return { kind: 'continued' } // WIFCONTINUED
  const low = raw & 0x7f
  if (low === 0) return { kind: 'exited', code: (raw >> 8) & 0xff } // WIFEXITED
  if ((raw & 0xff) === 0x7f) return { kind: 'stopped', signal: (raw >> 8) & 0xff } // WIFSTOPPED (incl. ptrace events)
  return { kind: 'signaled', signal: low, coreDumped: (raw & 0x80) !== 0 } // WIFSIGNALED
}

/** Encodes a status word (for tests and for Node's (code, signal) pairs). */
export function encodeWaitStatus(s: WaitStatus): number | null {
  switch (s.kind) {
    case 'exited':
      return (s.code & 0xff) << 8
    case 'signaled':
      return (s.signal & 0x7f) | (s.coreDumped ? 0x80 : 0)
    case 'stopped':
      return ((s.signal & 0xff) << 8) | 0x7f
    case 'continued':
      return 0xffff
    case 'still-alive':
      return null
  }
}

/** The helper of c2d737c9d7: exit code of a terminated process, or undefined when it is not terminated. */
export function exitCodeOf(s: WaitStatus): number | undefined {
  if (s.kind === 'exited') return s.code
  if (s.kind === 'signaled') return 128 + s.signal
  return undefined
}

/** Signal name (SIGKILL) or number → number, per this architecture's numbering (os.constants). */
export function signalNumber(sig: NodeJS.Signals | number): number {
  if (typeof sig === 'number') return sig
  const n = (constants.signals as Record<string, number>)[sig]
  if (n === undefined) throw new RangeError(`unknown signal ${sig}`)
  return n
}

/** Node's ChildProcess 'exit' arguments (code, signal) as a wait status. */
export function waitStatusFromNode(code: number | null, signal: NodeJS.Signals | null): WaitStatus {
  if (signal !== null) return { kind: 'signaled', signal: signalNumber(signal), coreDumped: false }
  if (code !== null) return { kind: 'exited', code }
  return { kind: 'still-alive' }
}
