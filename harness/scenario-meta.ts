// Scenario metadata: its shape, validation and naming. No vitest runtime import here, so the CLI and
// the reporter (main process) can use it; scenario.ts (worker side) builds on it.
import { basename } from 'node:path'
import type {} from 'vitest'

export interface ScenarioMeta {
  /** kebab-case, equal to the file name without `.scenario.ts`. */
  name: string
  /** The upstream change the scenario covers, e.g. "kata-containers/kata-containers agent: ttrpc health service". */
  upstream: string
  link?: string
  /** For gap fixes: what upstream HEAD does, and what kataref does instead. */
  gap?: { upstream: string; kataref: string }
  /**
   * Set when a hand-written fake stands in for what cannot run here: what it stands in for and why,
   * e.g. "Cloud Hypervisor (needs KVM): FakeClhApi, a recording fake of its REST API". The report
   * shows the scenario as contract-tested, never as a run against the real thing.
   */
  contractTested?: string
  /** Host capabilities needed: see KNOWN_REQUIREMENTS in requirements.ts (qemu, kvm, containerd, root). */
  requires?: string[]
}

declare module 'vitest' {
  interface TaskMeta {
    kataref?: ScenarioMeta
    /** Boot time of the guest this test used, in ms. */
    katarefBootMs?: number
    /** Guest logs attached to a failing test (console tail, agent log). */
    katarefLogs?: Array<{ type: string; title: string; content: string }>
  }
}

export const SCENARIO_SUFFIX = '.scenario.ts'
const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/

export class ScenarioMetaError extends Error {
  constructor(message: string) {
    super(`scenario metadata: ${message}`)
    this.name = 'ScenarioMetaError'
  }
}

export function validateScenarioMeta(meta: ScenarioMeta): ScenarioMeta {
  if (!meta || typeof meta !== 'object') throw new ScenarioMetaError('expected an object')
  if (typeof meta.name !== 'string' || !KEBAB.test(meta.name)) throw new ScenarioMetaError(`name '${String(meta.name)}' is not kebab-case`)
  if (typeof meta.upstream !== 'string' || !meta.upstream.trim()) throw new ScenarioMetaError(`${meta.name}: 'upstream' (the change covered) is required`)
  if (meta.gap && (!meta.gap.upstream?.trim() || !meta.gap.kataref?.trim())) throw new ScenarioMetaError(`${meta.name}: 'gap' needs both 'upstream' and 'kataref' lines`)
  if (meta.requires && !Array.isArray(meta.requires)) throw new ScenarioMetaError(`${meta.name}: 'requires' must be a list`)
  const out: ScenarioMeta = { name: meta.name, upstream: meta.upstream.trim() }
  if (meta.link) out.link = meta.link
  if (meta.gap) out.gap = { upstream: meta.gap.upstream.trim(), kataref: meta.gap.kataref.trim() }
  if (meta.contractTested !== undefined) {
    if (typeof meta.contractTested !== 'string' || !meta.contractTested.trim()) throw new ScenarioMetaError(`${meta.name}: 'contractTested' must say what the fake stands in for`)
    out.contractTested = meta.contractTested.trim()
  }
  out.requires = [...(meta.requires ?? [])]
  return out
}

export function scenarioNameOf(file: string): string {
  const b = basename(file)
  return b.endsWith(SCENARIO_SUFFIX) ? b.slice(0, -SCENARIO_SUFFIX.length) : b.replace(/\.[^.]*$/, '')
}

