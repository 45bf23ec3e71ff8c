// cmdline.ts options for hotplug bridges (spec §2) and VM templates (spec §7): pciBridges,
// memoryBackend, incoming.
import { describe, expect, it } from 'vitest'
import { buildQemuArgs, MEMORY_BACKEND_ID, pciBridgeArgs, runDirPaths, type QemuConfig } from './cmdline.ts'

const base: QemuConfig = {
  accel: 'tcg',
  smp: 1,
  memoryMiB: 256,
  kernel: '/k/vmlinux',
  append: 'console=ttyS0',
  rootfs: { path: '/img/rootfs.erofs' },
  paths: runDirPaths('/run/vm1'),
}

const optAfter = (args: string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []))

describe('pciBridges', () => {
  it('writes runtime-rs bridges pci-bridge-<n> on pcie.0: chassis n+1, addr 2+n, shpc off, reserve windows', () => {
    expect(pciBridgeArgs(2)).toEqual([
      '-device', 'pci-bridge,bus=pcie.0,id=pci-bridge-0,chassis_nr=1,shpc=off,addr=2,io-reserve=4k,mem-reserve=1m,pref64-reserve=1m',
      '-device', 'pci-bridge,bus=pcie.0,id=pci-bridge-1,chassis_nr=2,shpc=off,addr=3,io-reserve=4k,mem-reserve=1m,pref64-reserve=1m',
    ])
    expect(pciBridgeArgs(0)).toEqual([])
    expect(() => pciBridgeArgs(-1)).toThrow(/pciBridges/)
    expect(() => pciBridgeArgs(1.5)).toThrow(/pciBridges/)
  })

  it('puts the bridges before every auto-addressed device, and none by default', () => {
    const a = buildQemuArgs({ ...base, pciBridges: 1 })
    const devs = optAfter(a, '-device')
    expect(devs[0]).toMatch(/^pci-bridge,bus=pcie\.0,id=pci-bridge-0,/)
    expect(optAfter(buildQemuArgs(base), '-device').some((d) => d.startsWith('pci-bridge'))).toBe(false)
  })
})

describe('memoryBackend and incoming (VM templates)', () => {
  it('template VM: shared file-backed RAM named on -machine', () => {
    const a = buildQemuArgs({ ...base, memoryBackend: { path: '/run/vc/vm/template/memory', share: true } })
    expect(optAfter(a, '-machine')).toEqual([`q35,accel=tcg,memory-backend=${MEMORY_BACKEND_ID}`])
    expect(optAfter(a, '-object')).toEqual([`memory-backend-file,id=${MEMORY_BACKEND_ID},size=256M,mem-path=/run/vc/vm/template/memory,share=on`])
    expect(a).not.toContain('-incoming')
  })

  it('clone: private mapping of the same file, -incoming defer', () => {
    const a = buildQemuArgs({ ...base, memoryBackend: { path: '/t/memory', share: false }, incoming: 'defer' })
    expect(optAfter(a, '-object')).toEqual([`memory-backend-file,id=${MEMORY_BACKEND_ID},size=256M,mem-path=/t/memory,share=off`])
    expect(optAfter(a, '-incoming')).toEqual(['defer'])
  })

  it('escapes commas in the memory path', () => {
    const a = buildQemuArgs({ ...base, memoryBackend: { path: '/t,x/memory', share: true } })
    expect(optAfter(a, '-object')[0]).toContain('mem-path=/t,,x/memory,')
  })

  it('nothing file-backed by default', () => {
    const a = buildQemuArgs(base)
    expect(a).not.toContain('-object')
    expect(optAfter(a, '-machine')).toEqual(['q35,accel=tcg'])
  })
})
