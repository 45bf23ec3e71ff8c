import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { ToolError } from '../../impl/types/errors.ts'
import { resolveKernel, resolveKernelPackages } from './kernel.ts'

const hasApt = (() => {
  try {
    execFileSync('apt-cache', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe('kernel package resolution', () => {
  it.skipIf(!hasApt)('fails clearly for an unknown meta package, naming the overrides', async () => {
    const err = await resolveKernelPackages('kataref-no-such-kernel-meta').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolError)
    expect(String((err as Error).message)).toMatch(/kataref-no-such-kernel-meta/)
    expect(String((err as Error).message)).toMatch(/KATAREF_KERNEL/)
  })

  it('rejects half an override', async () => {
    await expect(resolveKernel({ cacheDir: '/nonexistent', progress: () => {}, kernelPath: '/boot/vmlinuz' })).rejects.toThrow(/set both/)
  })
})
