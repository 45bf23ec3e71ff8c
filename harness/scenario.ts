// The scenario API: a scenario is one vitest file `scenarios/<name>.scenario.ts` whose tests sit inside
// one `scenario({...}, () => { ... })` block. The block carries the metadata to the reporter through
// `task.meta` (inherited by every test in it); the `test` exported here adds the fixtures:
//   - `guest`: a booted guest, shared by the tests of the file (booted lazily by the first test that asks,
//     stopped when the file ends, left running with `kataref run --keep`);
//   - an automatic gate that skips each test with "skipped: missing <req>: <why>" when a requirement is
//     missing, before anything is booted.
// On a failing test that used the guest, the console tail and the agent's log lines are attached to the
// test (task.meta.katarefLogs; annotations too for anything a test annotates itself), so reports show them.
import { readFile, appendFile } from 'node:fs/promises'
import { describe, test as base, expect } from 'vitest'
import type { BootGuest, Guest, GuestOptions } from './guest.ts'
import type { bootGuest as realBootGuest } from './boot-guest.ts'
import type { LogAttachment } from './reporters/model.ts'
import { ENV } from './env.ts'
import { missingRequirement } from './requirements.ts'
import { SCENARIO_SUFFIX, ScenarioMetaError, scenarioNameOf, validateScenarioMeta, type ScenarioMeta } from './scenario-meta.ts'
import { errorMessage } from '../impl/types/errors.ts'

export { expect }
export type { GuestOptions }
export { SCENARIO_SUFFIX, ScenarioMetaError, scenarioNameOf, validateScenarioMeta, type ScenarioMeta }

/** Declares the scenario of this file; put its tests in `body`. */
export function scenario(meta: ScenarioMeta, body: () => void): void {
  const m = validateScenarioMeta(meta)
  describe(m.name, { meta: { kataref: m } }, body)
}

/** Lazily boots one guest per file; tests of the file share it. */
interface GuestLease<G extends Guest> {
  get(signal: AbortSignal): Promise<G>
}

/** The guest type scenarios see: whatever harness/boot-guest.ts returns (a Guest and more). */
export type RealGuest = Awaited<ReturnType<typeof realBootGuest>>

export interface ScenarioFixtures<G extends Guest = RealGuest> {
  guest: G
  /**
   * How this file's guest is booted (extra disks, kernel command line words). File-scoped; default `{}`.
   * A scenario file overrides it with `test.extend({ guestOptions: [async ({ myDisk }, use) => use({...}), { scope: 'file' }] })`,
   * typically depending on its own file-scoped fixture that builds the disks (see harness/guest-disks.ts).
   */
  guestOptions: GuestOptions
}
interface InternalFixtures<G extends Guest> {
  _scenarioGate: void
  _guestLease: GuestLease<G>
}

export interface ScenarioTestOptions<G extends Guest = RealGuest> {
  /** How to boot a guest; defaults to harness/boot-guest.ts (imported only when a test asks for `guest`). */
  bootGuest?: BootGuest<G>
  /** Lines of console attached to a failing test. */
  tailLines?: number
}

const loadRealBootGuest: BootGuest<RealGuest> = async (opts) => (await import('./boot-guest.ts')).bootGuest(opts)

// Ctrl-C in a terminal reaches every process of the group. The runner (cli) owns cancellation and
// forwards it to the workers, so a worker must survive SIGINT long enough to tear its guest down.
if (process.env.VITEST_WORKER_ID !== undefined || process.env.VITEST_POOL_ID !== undefined) {
  process.on('SIGINT', () => {})
}

async function agentLogTail(guest: Guest, lines: number): Promise<string> {
  const text = await readFile(guest.consoleLogPath, 'utf8')
  const json = text.split('\n').filter((l) => l.trimStart().startsWith('{'))
  return json.slice(-lines).join('\n')
}

/** Console tail and agent log of a guest, for a failing test. Never throws. */
async function guestLogs(guest: Guest, lines: number): Promise<LogAttachment[]> {
  const safe = async (f: () => Promise<string>) => {
    try {
      return await f()
    } catch (e) {
      return `(unavailable: ${errorMessage(e)})`
    }
  }
  return [
    { type: 'kataref:console', title: `guest ${guest.id} console (last ${lines} lines)`, content: await safe(() => guest.consoleTail(lines)) },
    { type: 'kataref:agent-log', title: `guest ${guest.id} agent log (last ${lines} lines)`, content: await safe(() => agentLogTail(guest, lines)) },
  ]
}

/** A failed boot's console, when the error names it (KatarefError context `consoleLogPath`). */
async function bootFailureLogs(e: unknown, lines: number): Promise<LogAttachment[]> {
  const path = (e as { context?: { consoleLogPath?: unknown } } | undefined)?.context?.consoleLogPath
  if (typeof path !== 'string') return []
  try {
    const tail = (await readFile(path, 'utf8')).split('\n').slice(-lines).join('\n')
    return [{ type: 'kataref:console', title: `boot failure console (last ${lines} lines of ${path})`, content: tail }]
  } catch {
    return []
  }
}

function describeKeptGuest(g: Guest): string {
  return [
    `guest ${g.id} kept running (kernel ${g.kernelVersion}, booted in ${g.bootMs} ms)`,
    `  run dir:       ${g.runDir}`,
    `  console log:   ${g.consoleLogPath}`,
    `  QMP socket:    ${g.qmpSocketPath}`,
    `  agent socket:  ${g.agentSocketPath}   (ttrpc to the agent; one client at a time)`,
    `  debug socket:  ${g.debugSocketPath}`,
    `  debug shell:   npx kataref vm shell ${g.runDir} [command]`,
    `  stop it with:  npx kataref vm stop ${g.runDir}`,
  ].join('\n')
}

/** Builds the scenario `test` with its fixtures; scenarios use the default `test` below. */
export function createScenarioTest<G extends Guest = RealGuest>(options: ScenarioTestOptions<G> = {}) {
  const boot = (options.bootGuest ?? loadRealBootGuest) as BootGuest<G>
  const tailLines = options.tailLines ?? 200
  return base.extend<ScenarioFixtures<G> & InternalFixtures<G>>({
    _scenarioGate: [
      async ({ task, skip }, use) => {
        const meta = task.meta.kataref
        if (!meta) throw new ScenarioMetaError(`test '${task.name}' is not inside scenario({...}, () => { ... })`)
        const expected = scenarioNameOf(task.file.name)
        if (meta.name !== expected) throw new ScenarioMetaError(`name '${meta.name}' does not match its file name '${expected}${SCENARIO_SUFFIX}'`)
        const missing = missingRequirement(meta.requires ?? [])
        if (missing) skip(missing)
        await use()
      },
      { auto: true },
    ],
    guestOptions: [async ({}, use) => use({}), { scope: 'file' }],
    _guestLease: [
      async ({ guestOptions }, use) => {
        const keep = process.env[ENV.keepGuest] === '1'
        let booting: Promise<G> | undefined
        await use({
          get(signal) {
            booting ??= boot({ ...guestOptions, keep, runRoot: process.env[ENV.runRoot], signal })
            return booting
          },
        })
        if (!booting) return
        const guest = await booting.catch(() => undefined)
        if (!guest) return
        if (keep) {
          // The CLI prints this after the run (console output of a worker may be swallowed by reporters).
          const text = describeKeptGuest(guest)
          const file = process.env[ENV.keepFile]
          if (file) await appendFile(file, JSON.stringify({ text }) + '\n')
          else process.stderr.write(text + '\n')
          return
        }
        await guest.stop()
      },
      { scope: 'file' },
    ],
    guest: async ({ _scenarioGate, _guestLease, task, signal, onTestFailed }, use) => {
      void _scenarioGate
      let guest: G
      try {
        guest = await _guestLease.get(signal)
      } catch (e) {
        task.meta.katarefLogs = await bootFailureLogs(e, tailLines)
        throw e
      }
      task.meta.katarefBootMs = guest.bootMs
      // vitest 4.1 refuses annotate() once a test has failed, so the logs travel in task.meta (sent to the
      // reporter with the final result) and the reporter turns them into the report's logs.
      onTestFailed(async () => {
        task.meta.katarefLogs = [...(task.meta.katarefLogs ?? []), ...(await guestLogs(guest, tailLines))]
      })
      await use(guest)
    },
  })
}

export const test = createScenarioTest()
