// The committed impl/gen must be exactly what `npm run gen` produces from impl/proto (like ttrpc's
// check-protos): regenerate into a temp dir with the same template and compare file by file.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')

function listFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else out.push(relative(dir, p))
    }
  }
  walk(dir)
  return out.sort()
}

describe('generated protobuf code', () => {
  it('impl/gen matches a fresh buf generate of impl/proto', () => {
    const out = mkdtempSync(join(tmpdir(), 'kataref-gen-'))
    try {
      execFileSync(join(root, 'node_modules/.bin/buf'), ['generate', 'impl/proto', '--template', 'impl/proto/buf.gen.yaml', '--output', out], { cwd: root, stdio: 'pipe' })
      const fresh = join(out, 'impl/gen')
      const committed = join(root, 'impl/gen')
      const files = listFiles(fresh)
      expect(files.length).toBeGreaterThan(0)
      expect(listFiles(committed)).toEqual(files)
      for (const f of files) {
        expect(readFileSync(join(committed, f), 'utf8'), `impl/gen/${f} is stale: run npm run gen`).toBe(readFileSync(join(fresh, f), 'utf8'))
      }
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })
})
