import { spawn } from 'node:child_process'
import { describe, expect, test } from 'vitest'
import { decodeWaitStatus, encodeWaitStatus, exitCodeOf, signalNumber, waitStatusFromNode, type WaitStatus } from './exit-code.ts'
import { Reaper } from './reaper.ts'

const sig = (s: NodeJS.Signals, core = false): WaitStatus => ({ kind: 'signaled', signal: signalNumber(s), coreDumped: core })

describe('exit code derivation (spec §1, c2d737c9d7)', () => {
  test('#1 normal exit 0 and 42 keep their status', () => {
    expect(exitCodeOf(decodeWaitStatus(encodeWaitStatus({ kind: 'exited', code: 0 })))).toBe(0)
    expect(exitCodeOf(decodeWaitStatus(42 << 8))).toBe(42)
  })
  test('#2 killed by SIGKILL/SIGTERM/SIGINT/SIGSEGV → 137/143/130/139, core flag ignored', () => {
    for (const core of [false, true]) {
      expect(exitCodeOf(decodeWaitStatus(encodeWaitStatus(sig('SIGKILL', core))))).toBe(137)
      expect(exitCodeOf(decodeWaitStatus(encodeWaitStatus(sig('SIGTERM', core))))).toBe(143)
      expect(exitCodeOf(decodeWaitStatus(encodeWaitStatus(sig('SIGINT', core))))).toBe(130)
      expect(exitCodeOf(decodeWaitStatus(encodeWaitStatus(sig('SIGSEGV', core))))).toBe(139)
    }
    // raw words as the kernel writes them: 9, 0x8b (SIGSEGV with core)
    expect(exitCodeOf(decodeWaitStatus(9))).toBe(137)
    expect(exitCodeOf(decodeWaitStatus(0x8b))).toBe(139)
    expect(exitCodeOf(decodeWaitStatus(64))).toBe(192) // realtime signal 64
  })
  test('#3 stopped, continued, still alive → no exit code; the process stays running in the table', () => {
    const r = new Reaper()
    const cell = r.register(100)
    for (const st of [decodeWaitStatus((19 << 8) | 0x7f), decodeWaitStatus(0xffff), decodeWaitStatus(null)]) {
      expect(exitCodeOf(st)).toBeUndefined()
      expect(r.onReaped(100, st)).toBeUndefined()
    }
    expect(decodeWaitStatus((19 << 8) | 0x7f)).toEqual({ kind: 'stopped', signal: 19 })
    expect(cell.code).toBeUndefined()
    expect(r.cell(100)).toBe(cell)
  })
  test('Node (code, signal) pairs map the same way', () => {
    expect(exitCodeOf(waitStatusFromNode(null, 'SIGKILL'))).toBe(137)
    expect(exitCodeOf(waitStatusFromNode(3, null))).toBe(3)
    expect(exitCodeOf(waitStatusFromNode(null, null))).toBeUndefined()
  })
})

describe('reaper (spec §1)', () => {
  test('#5 an unregistered pid changes nothing and the loop continues with the next pid', () => {
    const r = new Reaper()
    const cell = r.register(7)
    expect(r.reapAll([[99, { kind: 'exited', code: 1 }], [7, { kind: 'exited', code: 4 }]])).toEqual([undefined, 4])
    expect(r.unexpected).toEqual([99])
    expect(cell.code).toBe(4)
    expect(r.cell(99)).toBeUndefined()
  })

  test('#4 a registered child killed with SIGKILL reports 137', async () => {
    const r = new Reaper()
    const child = spawn('sleep', ['30'], { stdio: 'ignore' })
    const cell = r.register(child.pid!)
    child.on('exit', (code, signal) => r.onReaped(child.pid!, waitStatusFromNode(code, signal)))
    child.kill('SIGKILL')
    expect(await cell.exited).toBe(137)
  })

  test('#6 three concurrent waiters on a process that exits 3 all receive 3', async () => {
    const r = new Reaper()
    const child = spawn('sh', ['-c', 'sleep 0.2; exit 3'], { stdio: 'ignore' })
    const cell = r.register(child.pid!)
    child.on('exit', (code, signal) => r.onReaped(child.pid!, waitStatusFromNode(code, signal)))
    const waits = await Promise.all([cell.exited, cell.exited, cell.exited])
    expect(waits).toEqual([3, 3, 3])
    // a second report for the same pid does not change the recorded code
    expect(cell.settle(9)).toBe(false)
    expect(cell.code).toBe(3)
  })
})
