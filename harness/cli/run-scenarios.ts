// Runs the vitest `scenarios` project in this process with the conformance reporter (+ terminal ones).
// Owns the run's temp dir and Ctrl-C: the first SIGINT/SIGTERM cancels the run gracefully (running
// tests see their AbortSignal, fixtures tear their guests down), a second one exits at once.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ENV } from '../env.ts'
import { PACKAGE_ROOT, SCENARIOS_PROJECT, VITEST_CONFIG, packageVersion } from '../paths.ts'
import { ConformanceReporter } from '../reporters/conformance-reporter.ts'
import { reportFailed, type Shard } from '../reporters/model.ts'

/** Terminal reporters accepted by --reporter, mapped to vitest's names. */
export const TERMINAL_REPORTERS: Record<string, string | null> = {
  list: 'verbose',
  default: 'default',
  verbose: 'verbose',
  dot: 'dot',
  tree: 'tree',
  minimal: 'minimal',
  'github-actions': 'github-actions',
  none: null,
}

export interface RunScenariosOptions {
  root: string
  /** Absolute scenario file paths; empty = every scenario of the project. */
  files: string[]
  shard?: Shard | null
  grep?: string | null
  reporters: string[]
  outDir: string
  keep?: boolean
  /** Runs before vitest starts, with the run's environment in place (e.g. building guest images once). */
  prepare?: () => Promise<void>
  out?: (s: string) => void
  err?: (s: string) => void
}

export const EXIT_INTERRUPTED = 130

export async function runScenarios(o: RunScenariosOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s))
  const err = o.err ?? ((s: string) => process.stderr.write(s))
  const { createVitest, version: vitestVersion } = await import('vitest/node')
  const runRoot = await mkdtemp(join(tmpdir(), 'kataref-run-'))
  const keepFile = join(runRoot, 'kept-guests.jsonl')
  const savedEnv = { ...process.env }
  process.env[ENV.runRoot] = runRoot
  if (o.keep) {
    process.env[ENV.keepGuest] = '1'
    process.env[ENV.keepFile] = keepFile
  }
  const reporter = new ConformanceReporter({
    outDir: o.outDir,
    root: o.root,
    shard: o.shard ?? null,
    grep: o.grep ?? null,
    katarefVersion: packageVersion(PACKAGE_ROOT),
    vitestVersion,
    log: (m) => err(m + '\n'),
    warn: (m) => err(m + '\n'),
  })
  const terminal = o.reporters.map((r) => TERMINAL_REPORTERS[r]).filter((r): r is string => !!r)

  let interrupted = false
  let vitest: Awaited<ReturnType<typeof createVitest>> | undefined
  const before = new Set([...process.listeners('SIGINT'), ...process.listeners('SIGTERM')])
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      err(`\nkataref: second ${sig}: exiting without waiting for teardown\n`)
      process.exit(EXIT_INTERRUPTED)
    }
    interrupted = true
    err(`\nkataref: ${sig}: cancelling the run and waiting for guests to be torn down (again to force)\n`)
    void vitest?.cancelCurrentRun('keyboard-input')
  }
  let code = 1
  try {
    await o.prepare?.()
    vitest = await createVitest(
      'test',
      {
        config: VITEST_CONFIG,
        root: o.root,
        project: [SCENARIOS_PROJECT],
        run: true,
        watch: false,
        reporters: [...terminal, reporter],
        // vitest refuses --shard n > file count unless empty shards are allowed; an empty shard is a valid (empty) report.
        ...(o.shard ? { shard: `${o.shard.index}/${o.shard.count}`, passWithNoTests: true } : {}),
      },
      {},
      {},
    )
    // vitest's logger exits the process 1 ms after SIGINT, before fixtures can stop their guests; the
    // runner owns signals instead.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      for (const l of process.listeners(sig)) if (!before.has(l)) process.off(sig, l as () => void)
      process.on(sig, onSignal)
    }
    try {
      await vitest.start(o.files)
    } catch (e) {
      err(`kataref: ${(e as Error).message}\n`)
    }
    const report = reporter.report
    if (!report) {
      err('kataref: the run produced no report\n')
      code = 1
    } else {
      const s = report.summary
      out(`\nconformance: ${s.total} scenarios: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped${o.shard ? ` (shard ${o.shard.index}/${o.shard.count})` : ''}\n`)
      for (const p of reporter.written) out(`  wrote ${p}\n`)
      code = interrupted || report.run.endReason === 'interrupted' ? EXIT_INTERRUPTED : reportFailed(report) || reporter.errors.length ? 1 : 0
    }
  } finally {
    await vitest?.close().catch((e: unknown) => err(`kataref: closing vitest: ${(e as Error).message}\n`))
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k]
    const kept = o.keep ? await readFile(keepFile, 'utf8').catch(() => '') : ''
    if (kept) {
      for (const line of kept.split('\n').filter(Boolean)) out((JSON.parse(line) as { text: string }).text + '\n')
      out(`(run dir ${runRoot} is kept; remove it when done)\n`)
    } else {
      await rm(runRoot, { recursive: true, force: true })
    }
  }
  if (interrupted) code = EXIT_INTERRUPTED
  process.exitCode = 0
  return code
}
