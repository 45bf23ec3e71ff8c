import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadReport, mergeReports, MergeError } from './merge.ts'
import { sampleReport, sampleScenario } from './test/sample-report.ts'

const a = sampleReport([sampleScenario('a-one', 'passed'), sampleScenario('c-three', 'skipped')], { shard: { index: 1, count: 2 } })
const b = sampleReport([sampleScenario('b-two', 'failed')], { shard: { index: 2, count: 2 }, startedAt: '2026-11-29T01:00:05.000Z', finishedAt: '2026-11-29T01:00:30.000Z' })

describe('mergeReports', () => {
  it('combines shards, recomputes the summary and records where they came from', () => {
    const m = mergeReports([
      { path: 'a', report: a },
      { path: 'b', report: b },
    ])
    expect(m.scenarios.map((s) => s.name)).toEqual(['a-one', 'b-two', 'c-three'])
    expect(m.summary).toEqual({ total: 3, passed: 1, failed: 1, skipped: 1 })
    expect(m.run.shard).toBeNull()
    expect(m.run.mergedFrom?.map((x) => x.shard)).toEqual([
      { index: 1, count: 2 },
      { index: 2, count: 2 },
    ])
    expect(m.run.durationMs).toBe(30_000)
    expect(m.run.endReason).toBe('failed')
  })
  it('refuses reports of different versions, naming both', () => {
    const v2 = { ...b, version: 2 } as unknown as typeof b
    expect(() => mergeReports([{ path: 'x/conformance.json', report: a }, { path: 'y/conformance.json', report: v2 }])).toThrow(
      /different versions: version 1 \(x\/conformance.json\) vs version 2 \(y\/conformance.json\)/,
    )
  })
  it('refuses a version it cannot read', () => {
    const v9 = { ...a, version: 9 } as unknown as typeof a
    expect(() => mergeReports([{ path: 'x', report: v9 }])).toThrow(/version 9 but this kataref reads version 1/)
  })
  it('refuses a scenario that appears in two shards', () => {
    expect(() => mergeReports([{ path: 'x', report: a }, { path: 'y', report: a }])).toThrow(MergeError)
    expect(() => mergeReports([{ path: 'x', report: a }, { path: 'y', report: a }])).toThrow(/scenario 'a-one' appears in both x and y/)
  })
  it('refuses no input', () => {
    expect(() => mergeReports([])).toThrow(/no reports given/)
  })
})

describe('loadReport', () => {
  const dirs: string[] = []
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))
  it('reads a directory or a file, and says what is wrong with bad input', async () => {
    const d = await mkdtemp(join(tmpdir(), 'kataref-merge-'))
    dirs.push(d)
    await mkdir(join(d, 'ok'))
    await writeFile(join(d, 'ok', 'conformance.json'), JSON.stringify(a))
    await writeFile(join(d, 'bad.json'), '{"hello":1}')
    await writeFile(join(d, 'broken.json'), '{')
    expect((await loadReport(join(d, 'ok'))).report.summary.total).toBe(2)
    await expect(loadReport(join(d, 'bad.json'))).rejects.toThrow(/not a conformance report/)
    await expect(loadReport(join(d, 'broken.json'))).rejects.toThrow(/cannot read a conformance report/)
    await expect(loadReport(join(d, 'missing'))).rejects.toThrow(/no such file or directory/)
  })
})
