// After a conformance run that passes, one that fails and one interrupted with Ctrl-C, nothing is
// left behind: no qemu process, no socket, no temp directory. Real guests, real CLI, out of process.
// The CLI gets a private TMPDIR, so "nothing left" is exact even while other runs use the machine.
import { existsSync, mkdirSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildGuestImages } from '../../images/guest/index.ts'
import { ENV } from '../env.ts'
import { missingRequirement } from '../requirements.ts'
import { readReport, runCli, scenarioSource, writeProject, type InlineProject } from './inline.ts'

const noQemu = missingRequirement(['qemu'])

/** qemu processes whose command line mentions `dir` (their run dirs live under it). */
async function qemuUnder(dir: string): Promise<string[]> {
  const r = await execa('pgrep', ['-af', 'qemu-system'], { reject: false })
  return r.stdout.split('\n').filter((l) => l.includes(dir))
}

describe.skipIf(noQemu)('no leftovers after real-guest runs', () => {
  let p: InlineProject
  let images: string
  beforeAll(async () => {
    images = JSON.stringify(await buildGuestImages({ progress: false }))
    const boot = (name: string, body: string) => scenarioSource({ name, requires: ['qemu'], body })
    p = await writeProject({
      'boots-and-passes': boot('boots-and-passes', `  test('witness answers', async ({ guest }) => {\n    expect((await guest.debug.run('echo ok')).stdout.trim()).toBe('ok')\n  })`),
      'boots-and-fails': boot('boots-and-fails', `  test('fails on purpose', async ({ guest }) => {\n    expect((await guest.debug.run('echo no')).stdout.trim()).toBe('yes')\n  })`),
      'boots-and-waits': `import { writeFileSync } from 'node:fs'\nimport { setTimeout as sleep } from 'node:timers/promises'\n${boot(
        'boots-and-waits',
        `  test('waits until interrupted', async ({ guest, signal }) => {\n    await guest.debug.run('true')\n    writeFileSync(process.env.MARK!, 'booted')\n    await sleep(300_000, undefined, { signal })\n  })`,
      )}`,
    })
  }, 600_000)
  afterAll(() => p?.cleanup())

  function runOne(name: string, tmp: string, mark?: string) {
    mkdirSync(tmp, { recursive: true })
    // tsx keeps a compile cache in TMPDIR by design; off here so the check below can be strict.
    const env: Record<string, string> = { TMPDIR: tmp, TSX_DISABLE_CACHE: '1', [ENV.guestImages]: images, ...(mark ? { MARK: mark } : {}) }
    return runCli(['conformance', '--root', p.root, '--grep', `^${name}$`, '--out', join(p.scratch, name), '--reporter', 'none'], { env })
  }

  async function expectNothingLeft(tmp: string) {
    expect(await qemuUnder(tmp)).toEqual([])
    expect(await readdir(tmp)).toEqual([])
  }

  it.each([
    { scenario: 'boots-and-passes', exitCode: 0, counted: 'passed' as const },
    { scenario: 'boots-and-fails', exitCode: 1, counted: 'failed' as const },
  ])('a run of $scenario (exit $exitCode)', async ({ scenario, exitCode, counted }) => {
    const tmp = join(p.scratch, `tmp-${scenario}`)
    const r = await runOne(scenario, tmp)
    expect(r.exitCode, r.all).toBe(exitCode)
    expect((await readReport(join(p.scratch, scenario))).summary[counted]).toBe(1)
    await expectNothingLeft(tmp)
  }, 600_000)

  it('a run interrupted with Ctrl-C while the guest is up', async () => {
    const tmp = join(p.scratch, 'tmp-sigint')
    const mark = join(p.scratch, 'booted')
    const child = runOne('boots-and-waits', tmp, mark)
    for (let i = 0; i < 3000 && !existsSync(mark); i++) await sleep(100)
    expect(await readFile(mark, 'utf8')).toBe('booted')
    // The guest is really up at this point.
    expect((await qemuUnder(tmp)).length).toBe(1)
    child.kill('SIGINT')
    const r = await child
    expect(r.exitCode, r.all).toBe(130)
    await expectNothingLeft(tmp)
  }, 600_000)
})
