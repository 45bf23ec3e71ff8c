// Ctrl-C: the runner cancels the run, waits for the guest fixture's teardown, removes its temp dir and
// exits non-zero.
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readReport, runCli, scenarioSource, writeProject, type InlineProject } from './inline.ts'

describe('SIGINT during kataref conformance', () => {
  let p: InlineProject
  beforeAll(async () => {
    p = await writeProject({
      'slow-guest': `import { writeFileSync } from 'node:fs'\nimport { setTimeout as sleep } from 'node:timers/promises'\n${scenarioSource({
        name: 'slow-guest',
        fakeGuest: `{ markDir: process.env.MARK_DIR!, stopDelayMs: 500 }`,
        body: [
          `  test('runs long', async ({ guest, signal }) => {`,
          `    writeFileSync(process.env.MARK_DIR! + '/started', process.env.KATAREF_RUN_ROOT ?? '')`,
          `    await sleep(60_000, undefined, { signal })`,
          `    expect(guest.id).toBe('fake-1')`,
          `  })`,
          `  test('never starts', () => {})`,
        ].join('\n'),
      })}`,
    })
  })
  afterAll(() => p.cleanup())

  it('exits 130 after the guest is stopped, and leaves no run dir behind', async () => {
    const marks = join(p.scratch, 'marks')
    const out = join(p.scratch, 'out')
    const child = runCli(['conformance', '--root', p.root, '--out', out, '--reporter', 'none'], { env: { MARK_DIR: marks } })
    const started = join(marks, 'started')
    for (let i = 0; i < 300 && !existsSync(started); i++) await sleep(100)
    expect(existsSync(started)).toBe(true)
    const runRoot = await readFile(started, 'utf8')
    expect(runRoot).toMatch(/kataref-run-/)
    expect(existsSync(runRoot)).toBe(true)
    const t0 = Date.now()
    child.kill('SIGINT')
    const r = await child
    expect(r.exitCode, r.all).toBe(130)
    expect(Date.now() - t0).toBeLessThan(30_000)
    expect(r.stderr).toContain('SIGINT: cancelling the run')
    expect(await readFile(join(marks, 'stopped'), 'utf8')).toBe('stopped\n')
    expect(existsSync(runRoot)).toBe(false)
    const rep = await readReport(out)
    expect(rep.run.endReason).toBe('interrupted')
    expect(rep.summary.passed).toBe(0)
    expect(rep.scenarios[0]!.tests.map((t) => t.status)).toEqual(['skipped', 'skipped'])
  })
})
