import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConformanceReporter } from './conformance-reporter.ts'

const dirs: string[] = []
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))
const tmp = async () => {
  const d = await mkdtemp(join(tmpdir(), 'kataref-reporter-'))
  dirs.push(d)
  return d
}

describe('ConformanceReporter', () => {
  it('writes an empty, versioned report for an empty shard', async () => {
    const out = await tmp()
    const r = new ConformanceReporter({ outDir: out, root: '/p', shard: { index: 3, count: 4 }, host: () => ({ kernel: 'k', arch: 'x64', qemu: null, accel: 'tcg', hostname: 'h' }) })
    r.onTestRunStart()
    await r.onTestRunEnd([], [], 'passed')
    expect(r.errors).toEqual([])
    expect(r.report).toMatchObject({ version: 1, summary: { total: 0, passed: 0, failed: 0, skipped: 0 }, run: { shard: { index: 3, count: 4 }, endReason: 'passed' } })
    expect((await readdir(out)).sort()).toEqual(['conformance.json', 'index.html', 'junit.xml'])
  })

  it('reports its own problems instead of crashing silently, and still writes what it can', async () => {
    const out = await tmp()
    const warnings: string[] = []
    const r = new ConformanceReporter({
      outDir: out,
      root: '/p',
      host: () => {
        throw new Error('uname exploded')
      },
      warn: (m) => warnings.push(m),
    })
    await r.onTestRunEnd([], [{ name: 'Error', message: 'unhandled rejection in worker', stack: 'Error: unhandled rejection in worker' }], 'failed')
    expect(warnings).toEqual(['conformance reporter: probing host facts: uname exploded'])
    expect(r.report!.host.kernel).toBe('unknown')
    expect(r.report!.errors.map((e) => e.message)).toEqual(['unhandled rejection in worker', 'conformance reporter: probing host facts: uname exploded'])
    expect(r.errors).toHaveLength(1)
  })

  it('reports an unwritable output directory', async () => {
    const base = await tmp()
    const blocker = join(base, 'file')
    await writeFile(blocker, 'x')
    const warnings: string[] = []
    const r = new ConformanceReporter({ outDir: join(blocker, 'out'), root: '/p', host: () => ({ kernel: 'k', arch: 'x64', qemu: null, accel: 'tcg', hostname: 'h' }), warn: (m) => warnings.push(m) })
    await r.onTestRunEnd([], [], 'passed')
    expect(r.errors).toHaveLength(1)
    expect(warnings[0]).toMatch(/^conformance reporter: writing .*file\/out: /)
  })
})
