// The file-scoped `guestOptions` fixture: a scenario file overrides it (depending on its own file-scoped
// fixture that builds the disks), the guest boots once with those options, and the disks go after the file.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAKE_GUEST_TS, readReport, runCli, SCENARIO_TS, writeProject, type InlineProject } from './inline.ts'

const SOURCE = `import { scenario, createScenarioTest, expect } from ${JSON.stringify(SCENARIO_TS)}
import { fakeBootGuest } from ${JSON.stringify(FAKE_GUEST_TS)}
import { appendFileSync, mkdirSync } from 'node:fs'
const mark = process.env.MARK_DIR
mkdirSync(mark, { recursive: true })
const fake = fakeBootGuest({ markDir: mark })
const base = createScenarioTest({ bootGuest: async (opts) => {
  appendFileSync(mark + '/boot-options', JSON.stringify({ disks: opts.disks, kernelParams: opts.kernelParams }) + '\\n')
  return fake(opts)
} })
const test = base.extend({
  disk: [async ({}, use) => { appendFileSync(mark + '/events', 'built\\n'); await use('/host/disk.vmdk'); appendFileSync(mark + '/events', 'removed\\n') }, { scope: 'file' }],
  guestOptions: [async ({ disk }, use) => use({ disks: [{ path: disk, format: 'vmdk', serial: 's1' }], kernelParams: ['kataref.use_devmapper=0'] }), { scope: 'file' }],
})
scenario({ name: 'with-disks', upstream: 'x' }, () => {
  test('first', async ({ guest, disk }) => { expect(disk).toBe('/host/disk.vmdk'); void guest })
  test('second', async ({ guest }) => { void guest })
})
`

describe('guestOptions fixture', () => {
  let p: InlineProject
  beforeAll(async () => {
    p = await writeProject({ 'with-disks': SOURCE })
  })
  afterAll(() => p.cleanup())

  it('boots the file\'s guest once with the overridden disks and kernel words; the disk fixture is built once and removed after the file', async () => {
    const mark = join(p.scratch, 'm')
    const r = await runCli(['run', 'with-disks', '--root', p.root, '--out', join(p.scratch, 'out')], { env: { MARK_DIR: mark } })
    expect(r.exitCode, r.all).toBe(0)
    expect((await readReport(join(p.scratch, 'out'))).scenarios.map((s) => [s.name, s.status])).toEqual([['with-disks', 'passed']])
    const boots = (await readFile(join(mark, 'boot-options'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as unknown)
    expect(boots).toEqual([{ disks: [{ path: '/host/disk.vmdk', format: 'vmdk', serial: 's1' }], kernelParams: ['kataref.use_devmapper=0'] }])
    expect(await readFile(join(mark, 'events'), 'utf8')).toBe('built\nremoved\n')
    expect(await readFile(join(mark, 'stopped'), 'utf8')).toBe('stopped\n')
  })
})
