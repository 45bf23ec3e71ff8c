import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { defaultHypervisorConfig, type HypervisorConfig, loadConfiguration, makeConfig, parseConfiguration } from '../../../types/config/index.ts'
import {
  applyInitialSize, bytesToMib, cpusetCount, initialWorkload, PROFILE_OVERHEADS, qemuMemoryArgs, qemuSmpArgs,
  StaticSizingError, workloadFromAnnotations, workloadFromSpec,
} from './index.ts'

const f32 = Math.fround

function hv(o: Partial<HypervisorConfig>): HypervisorConfig {
  return defaultHypervisorConfig('qemu', { defaultVcpus: 1, defaultMaxvcpus: 8, defaultMemory: 2048, defaultMaxmemory: 16384, ...o })
}
function size(o: Partial<HypervisorConfig>, req: { vcpu: number; memMb: number }, staticOn = true) {
  const r = applyInitialSize(makeConfig(hv(o), { staticSandboxResourceMgmt: staticOn }), { vcpu: f32(req.vcpu), memMb: req.memMb })
  return { hv: r.config.hypervisor.qemu!, orig: r.origTomlDefaultMem }
}
function sizingError(fn: () => unknown): StaticSizingError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(StaticSizingError)
    return e as StaticSizingError
  }
  throw new Error('expected StaticSizingError')
}

describe('§6.1 bytes → MiB with the even bump', () => {
  it('513 MiB → 514, 1 MiB → 2, 512 MiB + 1 byte → 512, negative → 0', () => {
    expect(bytesToMib(537919488)).toBe(514)
    expect(bytesToMib(1048576)).toBe(2)
    expect(bytesToMib(536870912 + 1)).toBe(512)
    expect(bytesToMib(536870912)).toBe(512)
    expect(bytesToMib(-1)).toBe(0)
    expect(bytesToMib(1048575)).toBe(0)
    expect(bytesToMib(9007199254740993n)).toBe(8589934592)
  })
})

describe('§6.1 workload request', () => {
  it('§14.9 annotations period 100000 / quota 220000 / memory 536870912 → 2.2 vCPU (boot 3), 512 MiB; 513 MiB → 514; 1 MiB → 2', () => {
    const r = workloadFromAnnotations({
      'io.kubernetes.cri.sandbox-cpu-period': '100000', 'io.kubernetes.cri.sandbox-cpu-quota': '220000', 'io.kubernetes.cri.sandbox-memory': '536870912',
    })
    expect(r).toEqual({ vcpu: f32(2.2), memMb: 512 })
    expect(Math.ceil(r.vcpu)).toBe(3)
    expect(workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-memory': '537919488' }).memMb).toBe(514)
    expect(workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-memory': '1048576' }).memMb).toBe(2)
  })
  it('annotation values are trimmed; missing or unparsable → 0', () => {
    expect(workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-cpu-period': ' 100000 ', 'io.kubernetes.cri.sandbox-cpu-quota': '\t50000\n' }).vcpu).toBe(0.5)
    expect(workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-cpu-period': '100000' })).toEqual({ vcpu: 0, memMb: 0 })
    expect(workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-cpu-period': 'x', 'io.kubernetes.cri.sandbox-cpu-quota': '1', 'io.kubernetes.cri.sandbox-memory': '1Gi' })).toEqual({ vcpu: 0, memMb: 0 })
    expect(workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-cpu-period': '-100000', 'io.kubernetes.cri.sandbox-cpu-quota': '100000' }).vcpu).toBe(0)
  })
  it('§14.10 upstream-gap 9: quota -1 (CPU manager static) → vcpu 0 at HEAD; shares ignored', () => {
    expect(workloadFromAnnotations({
      'io.kubernetes.cri.sandbox-cpu-period': '100000', 'io.kubernetes.cri.sandbox-cpu-quota': '-1', 'io.kubernetes.cri.sandbox-cpu-shares': '51200',
    }).vcpu).toBe(0)
  })
  it('§14.10 a CRI-O-typed sandbox spec still reads the io.kubernetes.cri.* keys; containerd and dockershim types too', () => {
    const annotations = { 'io.kubernetes.cri.sandbox-cpu-period': '100000', 'io.kubernetes.cri.sandbox-cpu-quota': '150000', 'io.kubernetes.cri.sandbox-memory': '268435456' }
    for (const [k, v] of [['io.kubernetes.cri-o.ContainerType', 'sandbox'], ['io.kubernetes.cri.container-type', 'sandbox'], ['io.kubernetes.docker.type', 'podsandbox']] as const) {
      const spec = { annotations: { ...annotations, [k]: v }, linux: { resources: { cpu: { quota: 400000, period: 100000 } } } }
      expect(workloadFromSpec(spec)).toEqual({ vcpu: 1.5, memMb: 256 })
    }
  })
  it('single container: quota/period, else cpuset count, else 0; memory.limit → MiB', () => {
    expect(workloadFromSpec({ linux: { resources: { cpu: { quota: 150000, period: 100000 }, memory: { limit: 536870912 } } } })).toEqual({ vcpu: 1.5, memMb: 512 })
    expect(workloadFromSpec({ annotations: { 'io.kubernetes.cri.container-type': 'container' }, linux: { resources: { cpu: { quota: 50000n, period: 100000n } } } }).vcpu).toBe(0.5)
    expect(workloadFromSpec({})).toEqual({ vcpu: 0, memMb: 0 })
  })
  it('§14.11 no quota/period and cpus "0-3" → 4; quota 0 with period 100000 → 0; unparsable cpuset → 0', () => {
    expect(workloadFromSpec({ linux: { resources: { cpu: { cpus: '0-3' } } } }).vcpu).toBe(4)
    expect(workloadFromSpec({ linux: { resources: { cpu: { quota: 0, period: 100000, cpus: '0-3' } } } }).vcpu).toBe(0)
    expect(workloadFromSpec({ linux: { resources: { cpu: { cpus: '0-x' } } } }).vcpu).toBe(0)
    expect(cpusetCount('0-3,5,7-8')).toBe(7)
    expect(cpusetCount('3-1')).toBeUndefined()
  })
  it('§14.12 spec yields 0/0 → supplemented from annotations (1.2 vCPU / 256 MiB); a non-zero spec value is kept', () => {
    const annotations = { 'io.kubernetes.cri.sandbox-cpu-period': '100000', 'io.kubernetes.cri.sandbox-cpu-quota': '120000', 'io.kubernetes.cri.sandbox-memory': '268435456' }
    expect(initialWorkload({ spec: { annotations }, annotations })).toEqual({ vcpu: f32(1.2), memMb: 256 })
    expect(initialWorkload({ spec: { annotations, linux: { resources: { memory: { limit: 1073741824 } } } } })).toEqual({ vcpu: f32(1.2), memMb: 1024 })
    expect(initialWorkload({ spec: { annotations, linux: { resources: { cpu: { quota: 300000, period: 100000 } } } } })).toEqual({ vcpu: 3, memMb: 256 })
  })
  it('no spec → sized from the sandbox annotations', () => {
    expect(initialWorkload({ annotations: { 'io.kubernetes.cri.sandbox-memory': '1048576' } })).toEqual({ vcpu: 0, memMb: 2 })
  })
})

describe('§6.2 applying to the hypervisor section', () => {
  it('§14.1 static, default 3.0/1024, overhead 0.75/256, request 1.25 + 1024 → 2.0 vCPU, 1280 MiB, maxvcpus 2; -smp 2 -m 1280M', () => {
    const { hv: h } = size({ defaultVcpus: 3, defaultMemory: 1024, overheadVcpus: f32(0.75), overheadMemory: 256 }, { vcpu: 1.25, memMb: 1024 })
    expect(h.defaultVcpus).toBe(2)
    expect(h.defaultMemory).toBe(1280)
    expect(h.defaultMaxvcpus).toBe(2)
    expect(qemuSmpArgs(h)).toEqual(['-smp', '2'])
    expect(qemuMemoryArgs({ ...h, memorySlots: 0 })).toEqual(['-m', '1280M'])
  })
  it('§14.2 static, overhead 0.5/128, CPU-only 1.5 → 2.0 vCPUs, 128 MiB', () => {
    const { hv: h } = size({ overheadVcpus: 0.5, overheadMemory: 128 }, { vcpu: 1.5, memMb: 0 })
    expect([h.defaultVcpus, h.defaultMemory]).toEqual([2, 128])
  })
  it('§14.3 static, overhead 0.5/128, memory-only 512 → 1.0 vCPU, 640 MiB; zero overheads → 1.0 (clamp), 512 MiB', () => {
    const a = size({ overheadVcpus: 0.5, overheadMemory: 128 }, { vcpu: 0, memMb: 512 }).hv
    expect([a.defaultVcpus, a.defaultMemory]).toEqual([1, 640])
    const b = size({}, { vcpu: 0, memMb: 512 }).hv
    expect([b.defaultVcpus, b.defaultMemory]).toEqual([1, 512])
  })
  it('§14.4 static, no limits, defaults 2.0/512 → unchanged; default_maxvcpus becomes 2 even if configured 8', () => {
    const { hv: h } = size({ defaultVcpus: 2, defaultMemory: 512, defaultMaxvcpus: 8, overheadVcpus: 0.5, overheadMemory: 128 }, { vcpu: 0, memMb: 0 })
    expect([h.defaultVcpus, h.defaultMemory, h.defaultMaxvcpus]).toEqual([2, 512, 2])
  })
  it('§14.5 static off with limits (1.2 vCPU, 512 MiB) → unchanged', () => {
    const { hv: h } = size({ defaultVcpus: 1, defaultMemory: 2048, defaultMaxvcpus: 8 }, { vcpu: 1.2, memMb: 512 }, false)
    expect([h.defaultVcpus, h.defaultMemory, h.defaultMaxvcpus]).toEqual([1, 2048, 8])
  })
  it('§14.6 static, overhead_memory 0, CPU-only → exact 0 MiB error; static off with default_memory 0 → same', () => {
    const text = "computed sandbox memory is 0 MiB for hypervisor 'qemu'; set a non-zero memory limit or configure non-zero default_memory/overhead_memory"
    const e1 = sizingError(() => size({ overheadMemory: 0 }, { vcpu: 1.5, memMb: 0 }))
    expect(e1.message).toBe(`failed to setup static resource mgmt config: ${text}`)
    const e2 = sizingError(() => size({ defaultMemory: 0 }, { vcpu: 0, memMb: 0 }, false))
    expect(e2.message).toContain(text)
  })
  it('§14.7 overhead 1.0 + 2.5 → 3.5 vCPUs, maxvcpus 4 (raised from 2); 0.5 + 1.2 → maxvcpus 2 (lowered from 8); -smp 4 has no maxcpus', () => {
    const a = size({ defaultMaxvcpus: 2, overheadVcpus: 1, overheadMemory: 128 }, { vcpu: 2.5, memMb: 0 }).hv
    expect([a.defaultVcpus, a.defaultMaxvcpus]).toEqual([3.5, 4])
    expect(qemuSmpArgs(a)).toEqual(['-smp', '4'])
    const b = size({ defaultMaxvcpus: 8, overheadVcpus: 0.5, overheadMemory: 128 }, { vcpu: 1.2, memMb: 0 }).hv
    expect(b.defaultVcpus).toBe(f32(1.7))
    expect(b.defaultMaxvcpus).toBe(2)
  })
  it('§14.8 default_maxmemory 300, result 640 → default_maxmemory 640; origTomlDefaultMem is the pre-sizing default_memory', () => {
    const r = size({ defaultMemory: 2048, defaultMaxmemory: 300, overheadVcpus: 0.5, overheadMemory: 128 }, { vcpu: 0, memMb: 512 })
    expect(r.hv.defaultMemory).toBe(640)
    expect(r.hv.defaultMaxmemory).toBe(640)
    expect(r.orig).toBe(2048)
  })
  it('missing hypervisor section → failed to get hypervisor config', () => {
    const cfg = makeConfig(hv({}), { staticSandboxResourceMgmt: true, hypervisorName: 'clh' })
    expect(sizingError(() => applyInitialSize(cfg, { vcpu: 1, memMb: 0 })).message).toContain('failed to get hypervisor config')
  })
  it('does not modify the input config', () => {
    const cfg = makeConfig(hv({ overheadMemory: 128 }), { staticSandboxResourceMgmt: true })
    applyInitialSize(cfg, { vcpu: 1, memMb: 512 })
    expect(cfg.hypervisor.qemu!.defaultMemory).toBe(2048)
  })
  it('upstream-gap 7: CPU-only limit on the QEMU profile (0.2/32) would give 32 MiB < 64 → kataref rejects with a clear error', () => {
    const e = sizingError(() => size({ overheadVcpus: f32(0.2), overheadMemory: 32 }, { vcpu: 1, memMb: 0 }))
    expect(e.message).toContain("computed sandbox memory is 32 MiB for hypervisor 'qemu', below QEMU's minimum of 64 MiB")
    expect(e.message).toContain('set a memory limit or raise overhead_memory')
    // With a memory limit the same profile is fine (upstream CI's `memory: 2Gi` workaround).
    expect(size({ overheadVcpus: f32(0.2), overheadMemory: 32 }, { vcpu: 1, memMb: 2048 }).hv.defaultMemory).toBe(2080)
  })
  it('issue 6: static on, configured default_memory 0 (kept by config load), no limit → the exact 0 MiB error; a memory limit sizes it', () => {
    const file = '/test/configuration.toml'
    const { config } = parseConfiguration('[runtime]\nstatic_sandbox_resource_mgmt = true\n[hypervisor.qemu]\ndefault_memory = 0\noverhead_memory = 64\n', file, { cpus: 8, memoryMiB: 16384 })
    expect(sizingError(() => applyInitialSize(config, { vcpu: 0, memMb: 0 })).message).toBe(
      "failed to setup static resource mgmt config: computed sandbox memory is 0 MiB for hypervisor 'qemu'; set a non-zero memory limit or configure non-zero default_memory/overhead_memory")
    expect(applyInitialSize(config, { vcpu: 0, memMb: 256 }).config.hypervisor.qemu!.defaultMemory).toBe(320)
    expect(applyInitialSize(config, { vcpu: 1, memMb: 0 }).config.hypervisor.qemu!.defaultMemory).toBe(64)
  })
  it('upstream-gap 7: remote / rs-fc profiles (no overhead) + CPU-only limit → the 0 MiB error', () => {
    const cfg = makeConfig(defaultHypervisorConfig('remote', { defaultVcpus: 1, defaultMemory: 2048 }), { staticSandboxResourceMgmt: true })
    expect(sizingError(() => applyInitialSize(cfg, { vcpu: 1, memMb: 0 })).message).toContain("computed sandbox memory is 0 MiB for hypervisor 'remote'")
  })
  it('upstream-gap 8: maxvcpus = ceil(vcpus) without limits and no host-CPU clamp (64-CPU quota → 64 vCPUs)', () => {
    const r = size({ defaultMaxvcpus: 2, overheadMemory: 128 }, { vcpu: 64, memMb: 0 }).hv
    expect([r.defaultVcpus, r.defaultMaxvcpus]).toEqual([64, 64])
  })
  it('upstream-gap 9: quota -1 sizes vCPUs to overhead only (min 1)', () => {
    const req = workloadFromAnnotations({ 'io.kubernetes.cri.sandbox-cpu-period': '100000', 'io.kubernetes.cri.sandbox-cpu-quota': '-1', 'io.kubernetes.cri.sandbox-memory': '536870912' })
    expect(size({ overheadVcpus: f32(0.2), overheadMemory: 32 }, req).hv.defaultVcpus).toBe(1)
  })
  it('end to end from the shipped profile: 1.25 vCPU + 512 MiB limit → 1.45 vCPUs (boot 2), 544 MiB', () => {
    const path = fileURLToPath(new URL('../../../../config/configuration-kataref.toml', import.meta.url))
    const { config } = loadConfiguration({ path, host: { cpus: 2, memoryMiB: 8192 } })
    const req = initialWorkload({ spec: { linux: { resources: { cpu: { quota: 125000, period: 100000 }, memory: { limit: 536870912 } } } } })
    const h = applyInitialSize(config, req).config.hypervisor.qemu!
    expect(h.defaultVcpus).toBe(f32(f32(0.2) + f32(1.25)))
    expect(h.defaultMemory).toBe(544)
    expect(qemuSmpArgs(h)).toEqual(['-smp', '2'])
    expect(qemuMemoryArgs(h)).toEqual(['-m', '544M,slots=10,maxmem=8G'])
  })
})

describe('§6.2 QEMU -smp / -m strings', () => {
  it('-smp: maxcpus only when larger; confidential uses the vCPU count', () => {
    expect(qemuSmpArgs({ defaultVcpus: 1, defaultMaxvcpus: 8, confidentialGuest: false })).toEqual(['-smp', '1,maxcpus=8'])
    expect(qemuSmpArgs({ defaultVcpus: f32(2.2), defaultMaxvcpus: 3, confidentialGuest: false })).toEqual(['-smp', '3'])
    expect(qemuSmpArgs({ defaultVcpus: 1, defaultMaxvcpus: 8, confidentialGuest: true })).toEqual(['-smp', '1'])
  })
  it('-m: 1280 → 1280M, 2048 → 2G; slots/maxmem omitted when confidential or zero', () => {
    expect(qemuMemoryArgs({ defaultMemory: 1280, defaultMaxmemory: 0, memorySlots: 10, confidentialGuest: false })).toEqual(['-m', '1280M'])
    expect(qemuMemoryArgs({ defaultMemory: 2048, defaultMaxmemory: 16384, memorySlots: 10, confidentialGuest: false })).toEqual(['-m', '2G,slots=10,maxmem=16G'])
    expect(qemuMemoryArgs({ defaultMemory: 2048, defaultMaxmemory: 16384, memorySlots: 0, confidentialGuest: false })).toEqual(['-m', '2G'])
    expect(qemuMemoryArgs({ defaultMemory: 2048, defaultMaxmemory: 16384, memorySlots: 10, confidentialGuest: true })).toEqual(['-m', '2G'])
  })
})

describe('§6.3 / §14.13 profile overheads', () => {
  it('carries the template pairs; the shipped kataref profile matches qemu-runtime-rs', () => {
    expect(PROFILE_OVERHEADS['qemu-runtime-rs']).toMatchObject({ overheadVcpus: 0.2, overheadMemory: 32 })
    expect(PROFILE_OVERHEADS['qemu-se-runtime-rs']).toMatchObject({ overheadVcpus: 0.4, overheadMemory: 768 })
    expect(PROFILE_OVERHEADS['qemu-nvidia-gpu-runtime-rs']).toMatchObject({ defaultMemory: 8192, overheadVcpus: 0.5, overheadMemory: 512 })
    expect(PROFILE_OVERHEADS['qemu-nvidia-cpu-runtime-rs']).toMatchObject({ overheadVcpus: 0.2, overheadMemory: 128 })
    expect(PROFILE_OVERHEADS.remote).toMatchObject({ overheadVcpus: 0, overheadMemory: 0 })
    const path = fileURLToPath(new URL('../../../../config/configuration-kataref.toml', import.meta.url))
    const { config } = loadConfiguration({ path, host: { cpus: 2, memoryMiB: 8192 } })
    expect(config.runtime.staticSandboxResourceMgmt).toBe(true)
    expect(config.hypervisor.qemu).toMatchObject({ overheadVcpus: f32(0.2), overheadMemory: 32, defaultMemory: 2048 })
  })
})
