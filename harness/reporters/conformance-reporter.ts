// The vitest Reporter that collects a run into the ConformanceReport model and writes every format.
// It uses only vitest's public reporter API (onTestRunStart / onTestCaseResult / onTestRunEnd and the
// TestCase/TestModule facades), and reads scenario metadata from meta(), never from test names.
// Every hook is guarded: a reporter error is recorded in the report, printed, and fails the run.
import { relative, sep } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import type { Reporter, TestCase, TestModule, TestRunEndReason } from 'vitest/node'
import type { SerializedError } from '@vitest/utils'
import { scenarioNameOf } from '../scenario-meta.ts'
import { hostFacts } from '../host-facts.ts'
import {
  CONFORMANCE_REPORT_VERSION,
  scenarioStatus,
  summarize,
  type ConformanceReport,
  type HostFacts,
  type LogAttachment,
  type ReportError,
  type ScenarioResult,
  type Shard,
  type TestCaseResult,
} from './model.ts'
import { writeReports } from './write.ts'
import { errorMessage } from '../../impl/types/errors.ts'

export interface ConformanceReporterOptions {
  outDir: string
  /** Project root; files are reported relative to it. */
  root: string
  shard?: Shard | null
  grep?: string | null
  katarefVersion?: string
  vitestVersion?: string
  /** Defaults to probing the host; tests may pass fixed facts. */
  host?: () => HostFacts
  /** Progress notes (default: none). */
  log?: (message: string) => void
  /** Where reporter problems are printed (default stderr). */
  warn?: (message: string) => void
}

function toReportError(e: SerializedError | Error | { message?: string; stack?: string }): ReportError {
  const message = stripVTControlCharacters(String(e.message ?? e))
  const stack = e.stack ? stripVTControlCharacters(e.stack) : undefined
  return stack && stack !== message ? { message, stack } : { message }
}

function decodeBody(body: string | Uint8Array | undefined, encoding: string | undefined): string {
  if (body === undefined) return ''
  if (typeof body !== 'string') return Buffer.from(body).toString('utf8')
  return encoding === 'base64' ? Buffer.from(body, 'base64').toString('utf8') : body
}

export class ConformanceReporter implements Reporter {
  /** Problems the reporter hit; the CLI fails the run when non-empty. */
  readonly errors: Error[] = []
  /** The last report built (after onTestRunEnd). */
  report: ConformanceReport | undefined
  written: string[] = []

  private _startedAt = Date.now()

  constructor(private readonly _opts: ConformanceReporterOptions) {}

  private _guard<T>(hook: string, f: () => T): T | undefined {
    try {
      return f()
    } catch (e) {
      this._fail(hook, e)
      return undefined
    }
  }

  private _fail(where: string, e: unknown): void {
    const err = new Error(`conformance reporter: ${where}: ${errorMessage(e)}`, { cause: e })
    this.errors.push(err)
    ;(this._opts.warn ?? ((m: string) => process.stderr.write(m + '\n')))(err.message)
  }

  onTestRunStart(): void {
    this._guard('onTestRunStart', () => {
      this._startedAt = Date.now()
    })
  }

  /** A failed test is printed with its guest logs as soon as it ends, so a long run shows them early. */
  onTestCaseResult(testCase: TestCase): void {
    this._guard('onTestCaseResult', () => {
      if (testCase.result().state !== 'failed') return
      const logs = testCase.meta().katarefLogs ?? []
      if (logs.length) this._opts.log?.(`${testCase.fullName}: guest logs attached to the report (${logs.map((l) => l.type).join(', ')})`)
    })
  }

  async onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): Promise<void> {
    const report = this._guard('onTestRunEnd', () => this.build(modules, unhandledErrors, reason))
    if (!report) return
    try {
      const { written, errors } = await writeReports(report, this._opts.outDir)
      this.written = written
      for (const e of errors) this._fail('render', e)
    } catch (e) {
      this._fail(`writing ${this._opts.outDir}`, e)
    }
  }

  build(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): ConformanceReport {
    const scenarios = modules.map((m) => this._scenario(m, reason)).sort((a, b) => a.name.localeCompare(b.name))
    const finished = Date.now()
    const report: ConformanceReport = {
      version: CONFORMANCE_REPORT_VERSION,
      run: {
        startedAt: new Date(this._startedAt).toISOString(),
        finishedAt: new Date(finished).toISOString(),
        durationMs: finished - this._startedAt,
        shard: this._opts.shard ?? null,
        endReason: reason,
        grep: this._opts.grep ?? null,
        kataref: this._opts.katarefVersion ?? 'unknown',
        vitest: this._opts.vitestVersion ?? 'unknown',
        node: process.version,
      },
      host: this._host(),
      summary: summarize(scenarios),
      scenarios,
      errors: [...unhandledErrors.map(toReportError), ...this.errors.map(toReportError)],
    }
    this.report = report
    return report
  }

  private _host(): HostFacts {
    try {
      return (this._opts.host ?? hostFacts)()
    } catch (e) {
      this._fail('probing host facts', e)
      return { kernel: 'unknown', arch: process.arch, qemu: null, accel: 'tcg', hostname: 'unknown' }
    }
  }

  private _test(tc: TestCase, reason: TestRunEndReason, scenarioName: string | undefined): TestCaseResult {
    const r = tc.result()
    const durationMs = Math.round(tc.diagnostic()?.duration ?? 0)
    const prefix = scenarioName ? `${scenarioName} > ` : ''
    const name = prefix && tc.fullName.startsWith(prefix) ? tc.fullName.slice(prefix.length) : tc.fullName
    switch (r.state) {
      case 'passed':
        return { name, status: 'passed', skipReason: null, durationMs, errors: [] }
      case 'failed':
        return { name, status: 'failed', skipReason: null, durationMs, errors: r.errors.map(toReportError) }
      case 'skipped':
        return { name, status: 'skipped', skipReason: r.note ?? (tc.options.mode === 'todo' ? 'todo' : 'skipped'), durationMs, errors: [] }
      default:
        return { name, status: 'skipped', skipReason: reason === 'interrupted' ? 'not run: the run was interrupted' : 'not run', durationMs, errors: [] }
    }
  }

  private _scenario(m: TestModule, reason: TestRunEndReason): ScenarioResult {
    // Every test of the module, including those that got no result hook (an interrupted run).
    const all = [...m.children.allTests()]
    const name = scenarioNameOf(m.moduleId)
    const errors: ReportError[] = m.errors().map(toReportError)
    const meta = all.map((t) => t.meta().kataref).find((x) => x !== undefined)
    if (!meta && all.length > 0) errors.push({ message: `${name}: tests are not inside scenario({...}, () => { ... }); the scenario has no metadata` })
    if (meta && meta.name !== name) errors.push({ message: `scenario name '${meta.name}' does not match its file name '${name}'` })
    const results = all.map((t) => this._test(t, reason, meta?.name))
    if (results.length === 0 && errors.length === 0) {
      if (reason === 'interrupted') results.push({ name: '(scenario file)', status: 'skipped', skipReason: 'not run: the run was interrupted', durationMs: 0, errors: [] })
      else errors.push({ message: `${name}: no tests ran` })
    }
    const status = scenarioStatus(results, errors.length)
    const bootMs = all.map((t) => t.meta().katarefBootMs).find((x) => typeof x === 'number') ?? null
    const logs: LogAttachment[] = []
    for (const t of all) {
      if (t.result().state !== 'failed') continue
      for (const l of t.meta().katarefLogs ?? []) logs.push({ type: l.type, title: `${t.name}: ${l.title}`, content: stripVTControlCharacters(l.content) })
      for (const a of t.annotations()) {
        if (!a.attachment || a.attachment.path) continue
        logs.push({ type: a.type, title: `${t.name}: ${a.message}`, content: stripVTControlCharacters(decodeBody(a.attachment.body, a.attachment.bodyEncoding)) })
      }
    }
    const rel = relative(this._opts.root, m.moduleId).split(sep).join('/')
    return {
      name,
      file: rel,
      status,
      skipReason: status === 'skipped' ? (results.find((t) => t.skipReason)?.skipReason ?? 'skipped') : null,
      durationMs: Math.round(m.diagnostic().duration),
      bootMs,
      upstream: meta ? { change: meta.upstream, link: meta.link ?? null } : null,
      gap: meta?.gap ?? null,
      contractTested: meta?.contractTested ?? null,
      requires: meta?.requires ?? [],
      tests: results,
      errors,
      logs,
    }
  }
}
