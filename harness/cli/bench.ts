// kataref bench [name [args...]]: runs the benchmarks under bench/<name>/, each in its own process
// (they print tables and never assert timings). Scripts run with tsx, `*.test.ts` benches with vitest.
import { spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../paths.ts'
import { UsageError } from './args.ts'

export const BENCH_USAGE = `usage: kataref bench [--list] [<name> [args...]]

Runs bench/<name>/ (every benchmark when no name is given); args go to the benchmark script.`

export interface Bench {
  name: string
  files: string[]
}

export async function listBenches(root = PACKAGE_ROOT): Promise<Bench[]> {
  const dir = join(root, 'bench')
  const out: Bench[] = []
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) continue
    const files = (await readdir(join(dir, e.name))).filter((f) => f.endsWith('.ts')).sort()
    if (files.length) out.push({ name: e.name, files: files.map((f) => join(dir, e.name, f)) })
  }
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: PACKAGE_ROOT, stdio: 'inherit' })
    const forward = (sig: NodeJS.Signals) => child.kill(sig)
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolve(code ?? (signal ? 128 + 2 : 1))
    })
    child.on('error', (e) => {
      process.stderr.write(`kataref bench: ${cmd}: ${e.message}\n`)
      resolve(1)
    })
  })
}

async function runBench(b: Bench, args: string[]): Promise<number> {
  let worst = 0
  for (const f of b.files) {
    const code = f.endsWith('.test.ts')
      ? await run(process.execPath, [join(PACKAGE_ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'unit', f])
      : await run(process.execPath, ['--import', 'tsx', f, ...args])
    worst = Math.max(worst, code)
  }
  return worst
}

export async function benchCommand(argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === '--help' || first === '-h') {
    process.stdout.write(BENCH_USAGE + '\n')
    return 0
  }
  const benches = await listBenches()
  if (first === '--list') {
    for (const b of benches) process.stdout.write(`${b.name}\n`)
    return 0
  }
  if (first?.startsWith('-')) throw new UsageError('bench', `unknown option '${first}'`, BENCH_USAGE)
  if (first === undefined) {
    let worst = 0
    for (const b of benches) worst = Math.max(worst, await runBench(b, []))
    return worst
  }
  const b = benches.find((x) => x.name === first)
  if (!b) throw new UsageError('bench', `no benchmark '${first}' (known: ${benches.map((x) => x.name).join(', ') || 'none'})`, BENCH_USAGE)
  return runBench(b, rest)
}
