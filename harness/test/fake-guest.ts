// A Guest that boots nothing, for the harness's own tests. Writes markers so tests can see the
// fixture's lifecycle (booted, stopped) from outside the scenario process.
import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BootGuest, Guest } from '../guest.ts'

export interface FakeGuestOptions {
  /** Directory for lifecycle markers (booted, stopped) and the fake console log. */
  markDir: string
  bootMs?: number
  console?: string
  stopDelayMs?: number
}

export function fakeBootGuest(o: FakeGuestOptions): BootGuest {
  return async (opts) => {
    await mkdir(o.markDir, { recursive: true })
    const runDir = join(opts.runRoot ?? o.markDir, 'guest-fake')
    await mkdir(runDir, { recursive: true })
    const consoleLogPath = join(runDir, 'console.log')
    const consoleText = o.console ?? 'boot\n{"msg":"agent started"}\n'
    await writeFile(consoleLogPath, consoleText)
    await appendFile(join(o.markDir, 'booted'), `${opts.keep ? 'keep' : 'nokeep'}\n`)
    const guest: Guest = {
      id: 'fake-1',
      kernelVersion: '6.1.0-fake',
      bootMs: o.bootMs ?? 1234,
      agentSocketPath: join(runDir, 'agent.sock'),
      qmpSocketPath: join(runDir, 'qmp.sock'),
      debugSocketPath: join(runDir, 'debug.sock'),
      consoleLogPath,
      runDir,
      debug: { run: async (cmd) => ({ stdout: `ran ${cmd}\n`, exitCode: 0 }) },
      consoleTail: async (lines) => consoleText.split('\n').slice(-lines).join('\n'),
      stop: async () => {
        if (o.stopDelayMs) await new Promise((r) => setTimeout(r, o.stopDelayMs))
        await appendFile(join(o.markDir, 'stopped'), 'stopped\n')
      },
    }
    return guest
  }
}
