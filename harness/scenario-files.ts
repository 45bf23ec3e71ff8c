// Finding scenario files under a project root (`<root>/scenarios/**/*.scenario.ts`).
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { SCENARIO_SUFFIX, scenarioNameOf } from './scenario-meta.ts'

export interface ScenarioFile {
  name: string
  path: string
}

export async function listScenarioFiles(root: string): Promise<ScenarioFile[]> {
  const dir = join(root, 'scenarios')
  let entries: string[]
  try {
    entries = (await readdir(dir, { recursive: true })) as string[]
  } catch {
    return []
  }
  return entries
    .filter((e) => e.endsWith(SCENARIO_SUFFIX) && !e.split(/[\\/]/).some((part) => part === 'node_modules' || part.startsWith('_')))
    .map((e) => ({ name: scenarioNameOf(e), path: join(dir, e) }))
    .sort((a, b) => a.name.localeCompare(b.name))
}
