// The real CLI, out of process, on throwaway scenario projects (Playwright's runInlineTest).
import { existsSync } from 'node:fs'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { junitCases } from './junit-parse.ts'
import { ERRORS_TS, readReport, runCli, SCENARIO_TS, scenarioSource, writeProject, type InlineProject } from './inline.ts'

const statusMap = (r: { scenarios: Array<{ name: string; status: string }> }) => Object.fromEntries(r.scenarios.map((s) => [s.name, s.status]))

describe('kataref conformance', () => {
  let p: InlineProject
  beforeAll(async () => {
    p = await writeProject({
      'passes-ok': scenarioSource({
        name: 'passes-ok',
        upstream: 'kata agent: <script>alert(1)</script> health',
        gap: { upstream: 'HEAD answers <b>SERVING</b> early', kataref: 'we wait for the sandbox' },
        body: `  test('adds', () => { expect(1 + 1).toBe(2) })`,
      }),
      'fails-with-logs': scenarioSource({
        name: 'fails-with-logs',
        fakeGuest: `{ markDir: ${JSON.stringify('MARK')}, console: 'boot\\n<script>evil()</script>\\n{"msg":"agent <b>up</b>"}', bootMs: 777 }`,
        body: `  test('sees the guest', ({ guest }) => { expect(guest.kernelVersion).toBe('6.1.0-real') })\n  test('second test passes', ({ guest }) => { expect(guest.id).toBe('fake-1') })`,
      }).replace('"MARK"', 'process.env.MARK_DIR!'),
      'skips-on-kvm': scenarioSource({
        name: 'skips-on-kvm',
        requires: ['qemu', 'kvm'],
        body: `  test('needs kvm', ({ guest }) => { throw new Error('must not run: ' + guest.id) })`,
      }),
      'c-extra': scenarioSource({ name: 'c-extra', body: `  test('ok', () => {})` }),
      'd-extra': scenarioSource({ name: 'd-extra', body: `  test('ok', () => {})` }),
    })
  })
  afterAll(() => p.cleanup())

  const run = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli(['conformance', '--root', p.root, '--reporter', 'dot', ...args], { env: { KATAREF_ASSUME_MISSING: 'kvm', MARK_DIR: join(p.scratch, 'marks'), ...extraEnv } })

  let full: Awaited<ReturnType<typeof run>>
  beforeAll(async () => {
    full = await run(['--out', join(p.scratch, 'full')])
  })

  it('exits non-zero when a scenario fails, and junit.xml says which passed, failed and skipped (with reason)', async () => {
    expect(full.exitCode, full.all).toBe(1)
    expect(full.stdout).toContain('5 scenarios: 3 passed, 1 failed, 1 skipped')
    const cases = junitCases(await readFile(join(p.scratch, 'full', 'junit.xml'), 'utf8'))
    expect(cases.map((c) => `${c.suite}/${c.name}: ${c.status}`).sort()).toEqual([
      'c-extra/ok: passed',
      'd-extra/ok: passed',
      'fails-with-logs/second test passes: passed',
      'fails-with-logs/sees the guest: failed',
      'passes-ok/adds: passed',
      'skips-on-kvm/needs kvm: skipped',
    ])
    expect(cases.find((c) => c.suite === 'skips-on-kvm')!.message).toBe('skipped: missing kvm: KATAREF_ASSUME_MISSING lists it')
    expect(cases.find((c) => c.status === 'failed')!.message).toMatch(/expected '6.1.0-fake' to be '6.1.0-real'/)
  })

  it('records metadata, boot time and guest logs of failures in conformance.json; a skip is never a pass', async () => {
    const r = await readReport(join(p.scratch, 'full'))
    expect(r.version).toBe(1)
    expect(r.summary).toEqual({ total: 5, passed: 3, failed: 1, skipped: 1 })
    expect(r.host.kernel).toBeTruthy()
    const failed = r.scenarios.find((s) => s.name === 'fails-with-logs')!
    expect(failed.bootMs).toBe(777)
    expect(failed.file).toBe('scenarios/fails-with-logs.scenario.ts')
    expect(failed.logs.map((l) => l.type)).toEqual(['kataref:console', 'kataref:agent-log'])
    expect(failed.logs[1]!.content).toBe('{"msg":"agent <b>up</b>"}')
    const skipped = r.scenarios.find((s) => s.name === 'skips-on-kvm')!
    expect(skipped).toMatchObject({ status: 'skipped', skipReason: 'skipped: missing kvm: KATAREF_ASSUME_MISSING lists it', bootMs: null, requires: ['qemu', 'kvm'] })
    const ok = r.scenarios.find((s) => s.name === 'passes-ok')!
    expect(ok.gap).toEqual({ upstream: 'HEAD answers <b>SERVING</b> early', kataref: 'we wait for the sandbox' })
    // the fixture booted once for the file's two tests, and stopped the guest afterwards
    expect(await readFile(join(p.scratch, 'marks', 'booted'), 'utf8')).toBe('nokeep\n')
    expect(await readFile(join(p.scratch, 'marks', 'stopped'), 'utf8')).toBe('stopped\n')
  })

  it('writes a self-contained, escaped index.html', async () => {
    const html = await readFile(join(p.scratch, 'full', 'index.html'), 'utf8')
    expect(html).not.toMatch(/<script|<b>/i)
    expect(html).toContain('kata agent: &lt;script&gt;alert(1)&lt;/script&gt; health')
    expect(html).toContain('&lt;script&gt;evil()&lt;/script&gt;')
    expect(html).toContain('upstream: HEAD answers &lt;b&gt;SERVING&lt;/b&gt; early<br>kataref: we wait for the sandbox')
    expect(html).not.toMatch(/\b(src|href)\s*=|<link\b|@import|url\(/i)
  })

  it('--grep selects scenarios by name', async () => {
    const r = await run(['--grep', '^(c|d)-extra$', '--out', join(p.scratch, 'grep')])
    expect(r.exitCode, r.all).toBe(0)
    expect(statusMap(await readReport(join(p.scratch, 'grep')))).toEqual({ 'c-extra': 'passed', 'd-extra': 'passed' })
    const none = await run(['--grep', 'nothing-matches', '--out', join(p.scratch, 'none')])
    expect(none.exitCode).toBe(1)
    expect(none.stderr).toContain('no scenario matches --grep nothing-matches')
  })

  it('shards 1/2 and 2/2 are disjoint and merge into the full run', async () => {
    const [s1, s2] = await Promise.all([run(['--shard', '1/2', '--out', join(p.scratch, 's1')]), run(['--shard', '2/2', '--out', join(p.scratch, 's2')])])
    expect([s1.exitCode, s2.exitCode].sort()).toEqual([0, 1]) // the failing scenario is in exactly one shard
    const [r1, r2] = [await readReport(join(p.scratch, 's1')), await readReport(join(p.scratch, 's2'))]
    expect(r1.run.shard).toEqual({ index: 1, count: 2 })
    const n1 = r1.scenarios.map((s) => s.name)
    const n2 = r2.scenarios.map((s) => s.name)
    expect(n1.filter((n) => n2.includes(n))).toEqual([])
    expect(n1.length + n2.length).toBe(5)
    const m = await runCli(['report', 'merge', join(p.scratch, 's1'), join(p.scratch, 's2'), '--out', join(p.scratch, 'merged')])
    expect(m.exitCode, m.all).toBe(0)
    const merged = await readReport(join(p.scratch, 'merged'))
    const direct = await readReport(join(p.scratch, 'full'))
    expect(statusMap(merged)).toEqual(statusMap(direct))
    expect(merged.summary).toEqual(direct.summary)
    const strip = (xml: string) => junitCases(xml).sort((a, b) => `${a.suite}/${a.name}`.localeCompare(`${b.suite}/${b.name}`))
    expect(strip(await readFile(join(p.scratch, 'merged', 'junit.xml'), 'utf8'))).toEqual(strip(await readFile(join(p.scratch, 'full', 'junit.xml'), 'utf8')))
    expect(await readdir(join(p.scratch, 'merged'))).toEqual(expect.arrayContaining(['conformance.json', 'junit.xml', 'index.html']))
  })

  it('a shard count above the number of files gives empty shards, not an error', async () => {
    const r = await run(['--shard', '7/9', '--out', join(p.scratch, 'empty')])
    expect(r.exitCode, r.all).toBe(0)
    const rep = await readReport(join(p.scratch, 'empty'))
    expect(rep.scenarios).toEqual([])
    expect(rep.run.shard).toEqual({ index: 7, count: 9 })
  })

  it('merge refuses mismatched versions and a scenario present in two shards', async () => {
    const dir = join(p.scratch, 'full')
    const v2dir = join(p.scratch, 'v2')
    const r = await readReport(dir)
    await runCli(['report', 'merge', dir, '--out', v2dir])
    await writeFile(join(v2dir, 'conformance.json'), JSON.stringify({ ...r, version: 2 }))
    const bad = await runCli(['report', 'merge', dir, v2dir, '--out', join(p.scratch, 'nope')])
    expect(bad.exitCode).toBe(1)
    expect(bad.stderr).toMatch(/kataref report merge: reports have different versions: version 1 \(.*full\/conformance.json\) vs version 2 \(.*v2\/conformance.json\)/)
    expect(existsSync(join(p.scratch, 'nope'))).toBe(false)
    const dup = await runCli(['report', 'merge', dir, dir, '--out', join(p.scratch, 'nope')])
    expect(dup.exitCode).toBe(1)
    expect(dup.stderr).toMatch(/scenario '.*' appears in both/)
  })
})

describe('kataref run', () => {
  let p: InlineProject
  beforeAll(async () => {
    p = await writeProject({
      'keeps-guest': scenarioSource({
        name: 'keeps-guest',
        fakeGuest: `{ markDir: process.env.MARK_DIR! }`,
        body: `  test('uses the guest', async ({ guest }) => { expect((await guest.debug.run('uname -r')).exitCode).toBe(0) })`,
      }),
      'other-one': scenarioSource({ name: 'other-one', body: `  test('never runs here', () => { throw new Error('wrong scenario ran') })` }),
      'wrong-name': scenarioSource({ name: 'not-my-file', body: `  test('x', () => {})` }),
      'broken-syntax': `import { scenario } from 'nowhere-such-module'\nscenario({ name: 'broken-syntax' }, () => {})\n`,
      'no-meta': `import { createScenarioTest } from ${JSON.stringify(SCENARIO_TS)}\nconst test = createScenarioTest()\ntest('bare', () => {})\n`,
      'boot-fails': `import { scenario, createScenarioTest } from ${JSON.stringify(SCENARIO_TS)}
import { KatarefError } from ${JSON.stringify(ERRORS_TS)}
import { writeFileSync } from 'node:fs'
const test = createScenarioTest({ bootGuest: async () => {
  const log = process.env.MARK_DIR + '/console.log'
  writeFileSync(log, 'SeaBIOS\\nKernel panic - not syncing: VFS')
  throw new KatarefError('guest did not come up', 4, { consoleLogPath: log })
} })
scenario({ name: 'boot-fails', upstream: 'x' }, () => { test('boots', ({ guest }) => { void guest }) })
`,
    })
  })
  afterAll(() => p.cleanup())

  it('runs one scenario by name', async () => {
    const r = await runCli(['run', 'keeps-guest', '--root', p.root, '--out', join(p.scratch, 'one')], { env: { MARK_DIR: join(p.scratch, 'm1') } })
    expect(r.exitCode, r.all).toBe(0)
    expect(statusMap(await readReport(join(p.scratch, 'one')))).toEqual({ 'keeps-guest': 'passed' })
    expect(r.stdout).not.toContain('kept running')
  })

  it('--keep leaves the guest up and prints how to reach it', async () => {
    const file = join(p.root, 'scenarios', 'keeps-guest.scenario.ts')
    const r = await runCli(['run', file, '--keep', '--out', join(p.scratch, 'keep')], { env: { MARK_DIR: join(p.scratch, 'm2') } })
    expect(r.exitCode, r.all).toBe(0)
    expect(await readFile(join(p.scratch, 'm2', 'booted'), 'utf8')).toBe('keep\n')
    expect(existsSync(join(p.scratch, 'm2', 'stopped'))).toBe(false)
    for (const what of ['kept running', 'console log:', 'QMP socket:', 'agent socket:', 'debug socket:']) expect(r.stdout).toContain(what)
    const runDir = /\(run dir (\S+) is kept/.exec(r.stdout)?.[1]
    expect(runDir && existsSync(join(runDir, 'guest-fake', 'console.log'))).toBe(true)
    await import('node:fs/promises').then((fs) => fs.rm(runDir!, { recursive: true, force: true }))
  })

  it('fails a scenario whose metadata name does not match its file', async () => {
    const r = await runCli(['run', 'wrong-name', '--root', p.root, '--out', join(p.scratch, 'wn')])
    expect(r.exitCode).toBe(1)
    const rep = await readReport(join(p.scratch, 'wn'))
    expect(rep.scenarios[0]).toMatchObject({ name: 'wrong-name', status: 'failed' })
    expect(JSON.stringify(rep.scenarios[0])).toContain("name 'not-my-file' does not match its file name 'wrong-name")
  })

  it('fails files that do not load, have no scenario() metadata, or whose guest does not boot', async () => {
    const out = join(p.scratch, 'bad')
    const r = await runCli(['conformance', '--root', p.root, '--grep', '^(broken-syntax|no-meta|boot-fails)$', '--out', out, '--reporter', 'none'], { env: { MARK_DIR: p.scratch } })
    expect(r.exitCode).toBe(1)
    const rep = await readReport(out)
    expect(statusMap(rep)).toEqual({ 'boot-fails': 'failed', 'broken-syntax': 'failed', 'no-meta': 'failed' })
    const by = Object.fromEntries(rep.scenarios.map((s) => [s.name, s]))
    expect(by['broken-syntax']!.errors[0]!.message).toContain('nowhere-such-module')
    expect(JSON.stringify(by['no-meta'])).toContain('is not inside scenario({...}, () => { ... })')
    expect(by['boot-fails']!.tests[0]!.errors[0]!.message).toBe('guest did not come up')
    expect(by['boot-fails']!.logs[0]!.content).toContain('Kernel panic - not syncing: VFS')
    const cases = junitCases(await readFile(join(out, 'junit.xml'), 'utf8'))
    expect([...new Set(cases.filter((c) => c.status === 'failed').map((c) => c.suite))].sort()).toEqual(['boot-fails', 'broken-syntax', 'no-meta'])
    expect(cases.find((c) => c.suite === 'broken-syntax')!.name).toBe('(scenario file)')
  })

  it('names an unknown scenario and suggests close ones', async () => {
    const r = await runCli(['run', 'keeps', '--root', p.root])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("kataref run: no scenario named 'keeps'")
    expect(r.stderr).toContain('did you mean keeps-guest?')
  })
})

describe('kataref CLI usage', () => {
  it('names an unknown flag, per command', async () => {
    const r = await runCli(['conformance', '--frobnicate'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("kataref conformance: unknown option '--frobnicate'")
    const m = await runCli(['report', 'merge', 'x', '--shard', '1/2'])
    expect(m.stderr).toContain("kataref report merge: unknown option '--shard'")
  })
  it('validates --shard and --reporter', async () => {
    expect((await runCli(['conformance', '--shard', '3/2'])).stderr).toContain("--shard must be i/n with 1 <= i <= n, got '3/2'")
    expect((await runCli(['conformance', '--reporter', 'fancy'])).stderr).toContain("unknown reporter 'fancy'")
  })
  it('prints --help for each command', async () => {
    for (const cmd of [[], ['conformance'], ['run'], ['report']]) {
      const r = await runCli([...cmd, '--help'])
      expect(r.exitCode, cmd.join(' ')).toBe(0)
      expect(r.stdout).toMatch(/^usage: kataref/)
    }
  })
  it('delegates agent and image to their modules', async () => {
    const a = await runCli(['agent', '--help'])
    expect(a.stdout).toContain('usage: kataref agent')
    const i = await runCli(['image', 'inspect', '/nonexistent/disk.vmdk'])
    expect(i.exitCode).toBe(1)
    expect(i.stderr).toBe('kataref image: invalid disk /nonexistent/disk.vmdk: cannot be read')
    const b = await runCli(['image', 'build', '/tmp', '--verity-block-size', '1024', '--out', '/tmp/x'])
    expect(b.exitCode).toBe(2)
    expect(b.stderr).toContain("--verity-block-size must be 4096 or 512, got '1024'")
  })
  it('lists benchmarks and names an unknown one', async () => {
    const l = await runCli(['bench', '--list'])
    expect(l.exitCode).toBe(0)
    const u = await runCli(['bench', 'no-such-bench'])
    expect(u.exitCode).toBe(2)
    expect(u.stderr).toContain("kataref bench: no benchmark 'no-such-bench' (known: ")
  })

  it('rejects an unknown command', async () => {
    const r = await runCli(['frob'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("kataref: unknown command 'frob'")
  })
})
