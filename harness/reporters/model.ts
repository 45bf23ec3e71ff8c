// The one result model every renderer reads: `conformance.json`. Shards each write one; `report merge`
// combines them and re-renders. Bump CONFORMANCE_REPORT_VERSION on any incompatible change.
export const CONFORMANCE_REPORT_VERSION = 1

export type ScenarioStatus = 'passed' | 'failed' | 'skipped'

export interface Shard {
  index: number
  count: number
}

export interface HostFacts {
  /** `uname -r` */
  kernel: string
  arch: string
  /** First line of `qemu-system-* --version`, or null when QEMU is not installed. */
  qemu: string | null
  accel: 'kvm' | 'tcg'
  hostname: string
}

export interface RunInfo {
  startedAt: string
  finishedAt: string
  durationMs: number
  /** The shard this file came from; null for an unsharded or merged run. */
  shard: Shard | null
  /** For merged reports: the shards merged, in input order. */
  mergedFrom?: Array<{ shard: Shard | null; startedAt: string; host: HostFacts }>
  endReason: 'passed' | 'failed' | 'interrupted'
  grep: string | null
  kataref: string
  vitest: string
  node: string
}

export interface ReportError {
  message: string
  stack?: string
}

export interface LogAttachment {
  /** e.g. 'kataref:console', 'kataref:agent-log' */
  type: string
  title: string
  content: string
}

export interface TestCaseResult {
  name: string
  status: ScenarioStatus
  skipReason: string | null
  durationMs: number
  errors: ReportError[]
}

export interface ScenarioResult {
  /** From the file name (kebab-case). */
  name: string
  /** Path relative to the project root, '/'-separated. */
  file: string
  status: ScenarioStatus
  /** When skipped: the first test's reason ("skipped: missing kvm: …"). */
  skipReason: string | null
  durationMs: number
  bootMs: number | null
  upstream: { change: string; link: string | null } | null
  gap: { upstream: string; kataref: string } | null
  /** Set when a fake stood in for what cannot run here (optional: older reports lack it). */
  contractTested?: string | null
  requires: string[]
  tests: TestCaseResult[]
  /** File-level errors (import failure, missing or wrong metadata); test errors are on the tests. */
  errors: ReportError[]
  logs: LogAttachment[]
}

export interface Summary {
  total: number
  passed: number
  failed: number
  skipped: number
}

export interface ConformanceReport {
  version: typeof CONFORMANCE_REPORT_VERSION
  run: RunInfo
  host: HostFacts
  summary: Summary
  scenarios: ScenarioResult[]
  /** Errors outside any scenario: unhandled errors, reporter failures. Any entry fails the run. */
  errors: ReportError[]
}

export function summarize(scenarios: readonly ScenarioResult[]): Summary {
  const s: Summary = { total: scenarios.length, passed: 0, failed: 0, skipped: 0 }
  for (const sc of scenarios) s[sc.status]++
  return s
}

/** failed if any test failed or the file errored; passed if at least one test passed; else skipped. */
export function scenarioStatus(tests: readonly TestCaseResult[], fileErrors: number): ScenarioStatus {
  if (fileErrors > 0 || tests.some((t) => t.status === 'failed')) return 'failed'
  if (tests.some((t) => t.status === 'passed')) return 'passed'
  return tests.length === 0 ? 'failed' : 'skipped'
}

export function reportFailed(r: ConformanceReport): boolean {
  return r.summary.failed > 0 || r.errors.length > 0 || r.run.endReason !== 'passed'
}
