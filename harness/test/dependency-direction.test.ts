// Dependencies point one way: scenarios → harness → impl/images. The agent and the runtime never
// import each other, only the shared layers (impl/types, impl/gen, impl/proto, impl/ttrpc, impl/dmverity).
// A cheap static check of every relative import, like Playwright's DEPS.list lint.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...tsFiles(p))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out
}

/** Repo-relative targets of a file's relative imports (static and dynamic). */
function importsOf(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8')
  const specs = [...src.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!)
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)))
}

/** [folder, folders it must never import] */
const RULES: [string, string[]][] = [
  ['impl/agent', ['impl/runtime', 'harness', 'scenarios', 'images', 'bench']],
  ['impl/runtime', ['impl/agent', 'harness', 'scenarios', 'bench']],
  ['impl/ttrpc', ['impl/agent', 'impl/runtime', 'harness', 'scenarios']],
  ['impl/types', ['impl/agent', 'impl/runtime', 'harness', 'scenarios']],
  ['impl/dmverity', ['impl/agent', 'impl/runtime', 'harness', 'scenarios']],
  ['images', ['harness', 'scenarios', 'impl/agent']],
  ['harness', ['scenarios']],
]

describe('dependency direction', () => {
  for (const [from, banned] of RULES) {
    test(`${from} imports none of ${banned.join(', ')}`, () => {
      const bad: string[] = []
      for (const f of tsFiles(from)) {
        for (const target of importsOf(f)) {
          if (banned.some((b) => target === b || target.startsWith(b + '/'))) bad.push(`${f} → ${target}`)
        }
      }
      expect(bad).toEqual([])
    })
  }

  test('the check sees imports at all (guards against a regex that matches nothing)', () => {
    expect(importsOf('impl/agent/main.ts')).toContain('impl/agent/sandbox.ts')
  })
})
