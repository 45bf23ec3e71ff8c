// `kataref config show` through the real CLI: the shipped file prints its effective values; a bad
// value names the file, the key and the expected type, and exits 1.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PACKAGE_ROOT } from '../paths.ts'
import { runCli } from './inline.ts'

describe('kataref config show', () => {
  it('prints the effective values of the shipped configuration', async () => {
    const r = await runCli(['config', 'show', '--config', join(PACKAGE_ROOT, 'config', 'configuration-kataref.toml')])
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toContain('[runtime]')
    expect(r.stdout).toMatch(/hypervisor_name = "qemu"/)
    expect(r.stdout).toMatch(/log_level = "info"/)
  })

  it('a bad value names the file, the key and the expected type', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kataref-config-'))
    try {
      const file = join(dir, 'bad.toml')
      await writeFile(file, '[hypervisor.qemu]\ndefault_vcpus = "two"\n')
      const r = await runCli(['config', 'show', '--config', file])
      expect(r.exitCode).toBe(1)
      expect(r.stderr).toContain(file)
      expect(r.stderr).toContain('[hypervisor.qemu] default_vcpus: expected number')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('an unknown subcommand is a usage error', async () => {
    const r = await runCli(['config', 'dump'])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("expected 'show', got 'dump'")
  })
})
