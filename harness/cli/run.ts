// kataref run <scenario> [--keep]: one scenario, by name or path, for reproducing a bug.
import { existsSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { SCENARIO_SUFFIX, scenarioNameOf } from '../scenario-meta.ts'
import { listScenarioFiles } from '../scenario-files.ts'
import { parseCommandArgs, UsageError } from './args.ts'
import { parseReporters, projectRoot } from './conformance.ts'
import { runScenarios, TERMINAL_REPORTERS } from './run-scenarios.ts'
import { guestPreparationFor } from '../prepare-guest.ts'

export const RUN_USAGE = `usage: kataref run <scenario> [--keep] [--reporter NAME,...] [--out DIR] [--root DIR]

Runs one scenario, given by name (guest-boot) or by path (scenarios/guest-boot.scenario.ts).

  --keep             leave the guest running afterwards and print how to reach it
                     (console log, QMP socket, agent socket, debug socket)
  --reporter LIST    terminal output: ${Object.keys(TERMINAL_REPORTERS).join(', ')} (default: list)
  --out DIR          report directory (default: ./reports)
  --root DIR         project root whose scenarios/ holds the scenario (default: the kataref package)`

async function resolveScenario(arg: string, rootFlag: string | undefined): Promise<{ root: string; file: string }> {
  if (arg.endsWith(SCENARIO_SUFFIX) || arg.includes('/')) {
    const file = resolve(arg)
    if (!existsSync(file)) throw new UsageError('run', `no such scenario file: ${file}`, RUN_USAGE)
    // vitest's include is <root>/scenarios/**; the root is the folder above the nearest scenarios/.
    let dir = dirname(file)
    while (basename(dir) !== 'scenarios' && dirname(dir) !== dir) dir = dirname(dir)
    if (basename(dir) !== 'scenarios') throw new UsageError('run', `${file} is not inside a scenarios/ folder`, RUN_USAGE)
    return { root: rootFlag ? projectRoot(rootFlag) : dirname(dir), file }
  }
  const root = projectRoot(rootFlag)
  const all = await listScenarioFiles(root)
  const hit = all.find((f) => f.name === arg)
  if (!hit) {
    const near = all.filter((f) => f.name.includes(arg) || arg.includes(f.name)).map((f) => f.name)
    const hint = near.length ? `; did you mean ${near.join(', ')}?` : all.length ? `; known: ${all.map((f) => f.name).join(', ')}` : ''
    throw new UsageError('run', `no scenario named '${arg}' under ${root}/scenarios${hint}`, RUN_USAGE)
  }
  return { root, file: hit.path }
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'run',
    RUN_USAGE,
    argv,
    { keep: { type: 'boolean' }, reporter: { type: 'string' }, out: { type: 'string' }, root: { type: 'string' } },
    true,
  )
  if (values.help) {
    process.stdout.write(RUN_USAGE + '\n')
    return 0
  }
  if (positionals.length !== 1) throw new UsageError('run', positionals.length ? `expected one scenario, got ${positionals.length}` : 'which scenario? give its name or path', RUN_USAGE)
  const { root, file } = await resolveScenario(positionals[0]!, values.root)
  process.stderr.write(`kataref run: ${scenarioNameOf(file)} (${file})${values.keep ? ', keeping the guest' : ''}\n`)
  return runScenarios({
    prepare: guestPreparationFor(root),
    root,
    files: [file],
    reporters: parseReporters('run', RUN_USAGE, values.reporter ?? 'list'),
    outDir: resolve(values.out ?? 'reports'),
    keep: values.keep ?? false,
  })
}
