import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DeadlineError } from '../../../types/errors.ts'
import { DebugConsole, frameCommand, parseFramed, shellQuote } from './debug-console.ts'

describe('debug console framing', () => {
  it('quotes for sh', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
  })
  it('parses stdout, stderr and the exit code, ignoring text around the frame', () => {
    const buf = 'junk\n@@KR:old:B\nstale\n@@KR:ab12:B\nhello\n\n@@KR:ab12:E:3\noops\n\n@@KR:ab12:Z\nrest'
    const r = parseFramed(buf, 'ab12')
    expect(r?.result).toEqual({ stdout: 'hello\n', stderr: 'oops\n', exitCode: 3 })
    expect(buf.slice(r!.end)).toBe('rest')
  })
  it('keeps output without a final newline exact, and empty output empty', () => {
    expect(parseFramed('@@KR:x:B\nabc\n@@KR:x:E:0\n\n@@KR:x:Z\n', 'x')?.result).toEqual({ stdout: 'abc', stderr: '', exitCode: 0 })
    expect(parseFramed('@@KR:x:B\n\n@@KR:x:E:0\n\n@@KR:x:Z\n', 'x')?.result).toEqual({ stdout: '', stderr: '', exitCode: 0 })
  })
  it('waits for the whole frame', () => {
    expect(parseFramed('@@KR:x:B\nabc\n@@KR:x:E:0\n', 'x')).toBeUndefined()
  })
  it('frames a command on one line group ending with a newline', () => {
    const f = frameCommand('abcd', 'echo hi')
    expect(f.endsWith('\n')).toBe(true)
    expect(f).toContain("/bin/sh -c 'echo hi' </dev/null")
  })
})

// A stand-in guest: each connection to the socket is served by `sh` reading the stream, like the
// guest's debug shell on its virtio-serial port.
describe('DebugConsole against a local shell', () => {
  let dir: string
  let server: Server
  const shells: ChildProcess[] = []
  let dc: DebugConsole

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kataref-dc-'))
    server = createServer((sock) => {
      const sh = spawn('sh', [], { stdio: ['pipe', 'pipe', 'pipe'] })
      shells.push(sh)
      sock.pipe(sh.stdin!)
      sh.stdout!.pipe(sock)
      sh.stderr!.pipe(sock)
      sock.on('close', () => sh.kill())
    })
    await new Promise<void>((r) => server.listen(join(dir, 'debug.sock'), r))
    dc = await DebugConsole.connect(join(dir, 'debug.sock'), { timeoutMs: 10_000, consoleTail: () => 'TAIL-MARK' })
  })
  afterAll(async () => {
    dc.close()
    for (const s of shells) s.kill()
    await new Promise((r) => server.close(r))
    rmSync(dir, { recursive: true, force: true })
  })

  it('runs commands and returns stdout, stderr and exit code', async () => {
    expect(await dc.run('echo hello; echo err >&2; exit 7')).toEqual({ stdout: 'hello\n', stderr: 'err\n', exitCode: 7 })
  })
  it('survives syntax errors and exit in the command', async () => {
    const r = await dc.run("echo 'unterminated")
    expect(r.exitCode).not.toBe(0)
    expect(await dc.run('exit 0; echo no')).toEqual({ stdout: '', stderr: '', exitCode: 0 })
    expect((await dc.run('printf "%s" "a\'b"')).stdout).toBe("a'b")
  })
  it('does not let a command read the following commands', async () => {
    const [a, b] = await Promise.all([dc.run('cat'), dc.run('echo second')])
    expect(a.stdout).toBe('')
    expect(b.stdout).toBe('second\n')
  })
  it('serialises concurrent commands', async () => {
    const rs = await Promise.all([1, 2, 3, 4, 5].map((i) => dc.run(`sleep 0.0${i}; echo ${i}`)))
    expect(rs.map((r) => r.stdout)).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n'])
  })
  it('times out with the console tail, and keeps working afterwards', async () => {
    const err = await dc.run('sleep 1', { timeoutMs: 100 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeadlineError)
    expect(String((err as Error).message)).toContain('TAIL-MARK')
    expect((await dc.run('echo after')).stdout).toBe('after\n')
  })
  it('check() rejects on a non-zero exit', async () => {
    await expect(dc.check('false')).rejects.toThrow(/exited 1/)
    expect(await dc.check('echo ok')).toBe('ok\n')
  })
})
