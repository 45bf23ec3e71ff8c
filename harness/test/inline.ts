// Playwright-style runInlineTest for the harness: write throwaway scenario files into a temp project,
// run the real CLI out of process against it, read back what it wrote.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa, type ResultPromise } from 'execa'
import type { ConformanceReport } from '../reporters/model.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
export const HARNESS_DIR = join(HERE, '..')
export const BIN = join(HERE, '..', '..', 'bin', 'kataref.mjs')
export const SCENARIO_TS = join(HARNESS_DIR, 'scenario.ts')
export const FAKE_GUEST_TS = join(HERE, 'fake-guest.ts')
export const ERRORS_TS = join(HARNESS_DIR, '..', 'impl', 'types', 'errors.ts')

export interface InlineProject {
  root: string
  /** A scratch dir next to the project for reports and markers. */
  scratch: string
  cleanup(): Promise<void>
}

/** files: scenario name → source (written to <root>/scenarios/<name>.scenario.ts). */
export async function writeProject(files: Record<string, string>): Promise<InlineProject> {
  const base = await mkdtemp(join(tmpdir(), 'kataref-inline-'))
  const root = join(base, 'project')
  const scratch = join(base, 'scratch')
  await mkdir(join(root, 'scenarios'), { recursive: true })
  await mkdir(scratch, { recursive: true })
  for (const [name, src] of Object.entries(files)) await writeFile(join(root, 'scenarios', `${name}.scenario.ts`), src)
  return { root, scratch, cleanup: () => rm(base, { recursive: true, force: true }) }
}

/** A scenario file body: imports resolved to this checkout. */
export function scenarioSource(opts: { name: string; upstream?: string; requires?: string[]; gap?: { upstream: string; kataref: string }; body: string; fakeGuest?: string }): string {
  const meta = { name: opts.name, upstream: opts.upstream ?? `kata-containers/kata-containers: ${opts.name}`, ...(opts.requires ? { requires: opts.requires } : {}), ...(opts.gap ? { gap: opts.gap } : {}) }
  const testDecl = opts.fakeGuest
    ? `import { fakeBootGuest } from ${JSON.stringify(FAKE_GUEST_TS)}\nconst test = createScenarioTest({ bootGuest: fakeBootGuest(${opts.fakeGuest}) })`
    : 'const test = createScenarioTest()'
  return `import { scenario, createScenarioTest, expect } from ${JSON.stringify(SCENARIO_TS)}
${testDecl}
void expect
scenario(${JSON.stringify(meta)}, () => {
${opts.body}
})
`
}

/** The CLI's environment: without the vitest variables of the test worker running us. */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('VITEST') && k !== 'TEST' && k !== 'NODE_ENV') env[k] = v
  return { ...env, FORCE_COLOR: '0', NO_COLOR: '1', ...extra }
}

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): ResultPromise<{ reject: false; all: true; extendEnv: false }> {
  return execa('node', [BIN, ...args], { cwd: opts.cwd ?? tmpdir(), env: cliEnv(opts.env), extendEnv: false, reject: false, all: true })
}

export async function readReport(dir: string): Promise<ConformanceReport> {
  return JSON.parse(await readFile(join(dir, 'conformance.json'), 'utf8')) as ConformanceReport
}
