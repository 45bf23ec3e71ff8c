// kataref report merge <dir|file>... [--out DIR]: shard reports → one report, re-rendered.
import { resolve } from 'node:path'
import { loadReport, mergeReports, MergeError } from '../merge.ts'
import { writeReports } from '../reporters/write.ts'
import { parseCommandArgs, UsageError } from './args.ts'

export const REPORT_USAGE = `usage: kataref report merge <dir|conformance.json>... [--out DIR]

Merges the conformance.json of each shard into one report and writes conformance.json, junit.xml
and index.html to --out (default: ./reports). Refuses reports of different versions and a scenario
that appears in more than one shard.`

export async function reportCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(REPORT_USAGE + '\n')
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'merge') throw new UsageError('report', `unknown subcommand '${sub}' (known: merge)`, REPORT_USAGE)
  const { values, positionals } = parseCommandArgs('report merge', REPORT_USAGE, rest, { out: { type: 'string' } }, true)
  if (values.help) {
    process.stdout.write(REPORT_USAGE + '\n')
    return 0
  }
  if (positionals.length === 0) throw new UsageError('report merge', 'give at least one shard report directory', REPORT_USAGE)
  try {
    const inputs = []
    for (const p of positionals) inputs.push(await loadReport(resolve(p)))
    const merged = mergeReports(inputs)
    const outDir = resolve(values.out ?? 'reports')
    const { written, errors } = await writeReports(merged, outDir)
    const s = merged.summary
    process.stdout.write(`merged ${inputs.length} report(s): ${s.total} scenarios: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped\n`)
    for (const p of written) process.stdout.write(`  wrote ${p}\n`)
    for (const e of errors) process.stderr.write(`kataref report merge: ${e.message}\n`)
    return errors.length ? 1 : 0
  } catch (e) {
    if (e instanceof MergeError) {
      process.stderr.write(`kataref ${e.message}\n`)
      return 1
    }
    throw e
  }
}
