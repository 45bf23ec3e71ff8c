// Merges shard reports into one. Refuses mixed versions (like vitest blobs) and a scenario that appears
// in two shards; the result re-renders through the same renderers as a direct run.
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CONFORMANCE_REPORT_VERSION, summarize, type ConformanceReport, type RunInfo } from './reporters/model.ts'
import { errorMessage } from '../impl/types/errors.ts'

export class MergeError extends Error {
  constructor(message: string) {
    super(`report merge: ${message}`)
    this.name = 'MergeError'
  }
}

export interface LoadedReport {
  path: string
  report: ConformanceReport
}

/** Accepts a directory holding conformance.json or the file itself. */
export async function loadReport(pathOrDir: string): Promise<LoadedReport> {
  let path = pathOrDir
  try {
    if ((await stat(pathOrDir)).isDirectory()) path = join(pathOrDir, 'conformance.json')
  } catch {
    throw new MergeError(`${pathOrDir}: no such file or directory`)
  }
  let data: unknown
  try {
    data = JSON.parse(await readFile(path, 'utf8'))
  } catch (e) {
    throw new MergeError(`${path}: cannot read a conformance report (${errorMessage(e)})`)
  }
  if (!data || typeof data !== 'object' || !('version' in data) || !('scenarios' in data)) throw new MergeError(`${path}: not a conformance report (no version/scenarios)`)
  return { path, report: data as ConformanceReport }
}

const worst = (a: RunInfo['endReason'], b: RunInfo['endReason']): RunInfo['endReason'] => {
  const rank = { passed: 0, failed: 1, interrupted: 2 }
  return rank[a] >= rank[b] ? a : b
}

export function mergeReports(inputs: readonly LoadedReport[]): ConformanceReport {
  if (inputs.length === 0) throw new MergeError('no reports given')
  const versions = new Map<unknown, string>()
  for (const { path, report } of inputs) if (!versions.has(report.version)) versions.set(report.version, path)
  if (versions.size > 1) {
    const list = [...versions].map(([v, p]) => `version ${String(v)} (${p})`).join(' vs ')
    throw new MergeError(`reports have different versions: ${list}; re-run every shard with the same kataref`)
  }
  const [only] = versions.keys()
  if (only !== CONFORMANCE_REPORT_VERSION) throw new MergeError(`reports are version ${String(only)} but this kataref reads version ${CONFORMANCE_REPORT_VERSION}`)

  const seen = new Map<string, string>()
  const scenarios = []
  for (const { path, report } of inputs) {
    for (const sc of report.scenarios) {
      const prev = seen.get(sc.name)
      if (prev) throw new MergeError(`scenario '${sc.name}' appears in both ${prev} and ${path}; were the shards run with the same --shard count?`)
      seen.set(sc.name, path)
      scenarios.push(sc)
    }
  }
  scenarios.sort((a, b) => a.name.localeCompare(b.name))
  const runs = inputs.map((i) => i.report.run)
  const start = Math.min(...runs.map((r) => Date.parse(r.startedAt)))
  const end = Math.max(...runs.map((r) => Date.parse(r.finishedAt)))
  const first = inputs[0]!.report
  return {
    version: CONFORMANCE_REPORT_VERSION,
    run: {
      ...first.run,
      startedAt: new Date(start).toISOString(),
      finishedAt: new Date(end).toISOString(),
      durationMs: end - start,
      shard: null,
      mergedFrom: inputs.map(({ report: r }) => ({ shard: r.run.shard, startedAt: r.run.startedAt, host: r.host })),
      endReason: runs.map((r) => r.endReason).reduce(worst),
    },
    host: first.host,
    summary: summarize(scenarios),
    scenarios,
    errors: inputs.flatMap((i) => i.report.errors),
  }
}
