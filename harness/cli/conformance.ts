// kataref conformance: every scenario (or a --grep subset / a --shard), reports to --out.
import { resolve } from 'node:path'
import { ENV } from '../env.ts'
import { PACKAGE_ROOT } from '../paths.ts'
import { listScenarioFiles } from '../scenario-files.ts'
import { parseCommandArgs, parseRegExp, parseShard, UsageError } from './args.ts'
import { runScenarios, TERMINAL_REPORTERS } from './run-scenarios.ts'
import { guestPreparationFor } from '../prepare-guest.ts'

export const CONFORMANCE_USAGE = `usage: kataref conformance [--grep RE] [--shard I/N] [--reporter NAME,...] [--out DIR] [--root DIR]

Runs the scenarios (vitest project 'scenarios') and writes conformance.json, junit.xml and index.html.

  --grep RE          only scenarios whose name matches the regular expression
  --shard I/N        run the I-th of N disjoint shards (by file); merge with 'kataref report merge'
  --reporter LIST    terminal output: ${Object.keys(TERMINAL_REPORTERS).join(', ')} (default: default)
  --out DIR          report directory (default: ./reports)
  --root DIR         project root whose scenarios/ is run (default: the kataref package; env ${ENV.root})

Exit status: 0 when no scenario failed, 1 on a failure or reporter error, 130 when interrupted.`

export function parseReporters(command: string, usage: string, list: string | undefined): string[] {
  const names = (list ?? 'default').split(',').map((s) => s.trim()).filter(Boolean)
  for (const n of names) if (!(n in TERMINAL_REPORTERS)) throw new UsageError(command, `unknown reporter '${n}' (known: ${Object.keys(TERMINAL_REPORTERS).join(', ')})`, usage)
  return names
}

export function projectRoot(flag: string | undefined): string {
  return resolve(flag ?? process.env[ENV.root] ?? PACKAGE_ROOT)
}

export async function conformanceCommand(argv: string[]): Promise<number> {
  const cmd = 'conformance'
  const { values } = parseCommandArgs(cmd, CONFORMANCE_USAGE, argv, {
    grep: { type: 'string' },
    shard: { type: 'string' },
    reporter: { type: 'string' },
    out: { type: 'string' },
    root: { type: 'string' },
  })
  if (values.help) {
    process.stdout.write(CONFORMANCE_USAGE + '\n')
    return 0
  }
  const shard = values.shard ? parseShard(cmd, CONFORMANCE_USAGE, values.shard) : null
  const grep = values.grep ? parseRegExp(cmd, CONFORMANCE_USAGE, '--grep', values.grep) : null
  const reporters = parseReporters(cmd, CONFORMANCE_USAGE, values.reporter)
  const root = projectRoot(values.root)
  const all = await listScenarioFiles(root)
  const chosen = grep ? all.filter((f) => grep.test(f.name)) : all
  if (chosen.length === 0) {
    process.stderr.write(`kataref conformance: no scenario ${grep ? `matches --grep ${values.grep} ` : ''}under ${root}/scenarios\n`)
    return 1
  }
  return runScenarios({
    prepare: guestPreparationFor(root),
    root,
    // Explicit paths: vitest also applies the project's include, so both must agree on a file.
    files: chosen.map((f) => f.path),
    shard,
    grep: values.grep ?? null,
    reporters,
    outDir: resolve(values.out ?? 'reports'),
  })
}
