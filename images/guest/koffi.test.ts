import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleAgent, copyKoffi, koffiFiles, koffiVersion } from './agent-bundle.ts'

describe('agent bundle + shipped koffi', () => {
  it('ships only package.json, the JS entry points and the linux_x64 prebuild', () => {
    const rels = koffiFiles().map(([, r]) => r)
    expect(rels).toContain('package.json')
    expect(rels).toContain('build/koffi/linux_x64/koffi.node')
    expect(rels.every((r) => r === 'package.json' || /\.(c?js|mjs)$/.test(r) || r === 'build/koffi/linux_x64/koffi.node')).toBe(true)
  })

  it('a bundled ESM entry runs from a folder holding only the bundle and the copied koffi', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kataref-bundle-'))
    try {
      const entry = join(dir, 'entry.ts')
      writeFileSync(entry, "import koffi from 'koffi'\nimport { pino } from 'pino'\npino({ level: 'silent' }).info('x')\nconst n: string = koffi.version\nconsole.log(n)\n")
      const app = join(dir, 'app')
      copyKoffi(join(app, 'node_modules', 'koffi'))
      writeFileSync(join(app, 'agent.mjs'), await bundleAgent(entry))
      const out = execFileSync(process.execPath, [join(app, 'agent.mjs')], { encoding: 'utf8', cwd: '/' })
      expect(out.trim()).toBe(koffiVersion())
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
