// Where the kataref package lives, independent of the working directory (works as an installed bin).
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const VITEST_CONFIG = join(PACKAGE_ROOT, 'vitest.config.ts')
export const SCENARIOS_PROJECT = 'scenarios'

export function packageVersion(root = PACKAGE_ROOT): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}
