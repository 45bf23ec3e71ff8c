// The workload's resource request used by static sandbox sizing (runtime-rs
// resource/src/cpu_mem/initial_size.rs + kata-types cpu.rs, spec §6.1).
// vCPUs are f32 (Math.fround after each step), memory is whole MiB.

/** The parts of an OCI runtime spec that sizing reads. */
export interface OciSizingSpec {
  annotations?: Record<string, string>
  linux?: {
    resources?: {
      cpu?: { quota?: number | bigint; period?: number | bigint; cpus?: string }
      memory?: { limit?: number | bigint }
    }
  }
}

export interface WorkloadRequest {
  /** f32 vCPUs (may be fractional: 2.2). */
  vcpu: number
  /** MiB, even (2 MiB aligned) unless 0. */
  memMb: number
}

export const ANNO_SANDBOX_CPU_PERIOD = 'io.kubernetes.cri.sandbox-cpu-period'
export const ANNO_SANDBOX_CPU_QUOTA = 'io.kubernetes.cri.sandbox-cpu-quota'
export const ANNO_SANDBOX_MEMORY = 'io.kubernetes.cri.sandbox-memory'
/** Not read at HEAD (upstream-gap 9; PR #12223 would use it). */
export const ANNO_SANDBOX_CPU_SHARES = 'io.kubernetes.cri.sandbox-cpu-shares'

/** Container-type annotations, first present wins: CRI-O, containerd, dockershim. */
export const CONTAINER_TYPE_KEYS: readonly string[] = [
  'io.kubernetes.cri-o.ContainerType',
  'io.kubernetes.cri.container-type',
  'io.kubernetes.docker.type',
]
const SANDBOX_TYPES = ['sandbox', 'podsandbox']

const MIB = 1048576n

/** Bytes → MiB: negative → 0; integer division; an odd result is bumped by one (hugepage alignment). */
export function bytesToMib(bytes: number | bigint): number {
  const b = typeof bytes === 'bigint' ? bytes : BigInt(Math.trunc(bytes))
  if (b < 0n) return 0
  const mib = Number(b / MIB)
  return mib % 2 === 1 ? mib + 1 : mib
}

/** quota ≥ 0 and period > 0 → quota/period (f64 division, stored as f32); else 0. */
export function vcpuFromQuotaPeriod(quota: number | bigint, period: number | bigint): number {
  const q = Number(quota)
  const p = Number(period)
  return q >= 0 && p > 0 ? Math.fround(q / p) : 0
}

/** Number of CPUs in a cpuset list (`0-3,5`); undefined when it does not parse. */
export function cpusetCount(cpus: string): number | undefined {
  const set = new Set<number>()
  for (const part of cpus.split(',')) {
    const s = part.trim()
    if (s === '') continue
    const m = /^(\d+)(?:-(\d+))?$/.exec(s)
    if (!m) return undefined
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) return undefined
    for (let i = lo; i <= hi; i++) set.add(i)
  }
  return set.size
}

/** The container type from the first container-type annotation present. */
export function containerType(annotations: Record<string, string> | undefined): string | undefined {
  for (const k of CONTAINER_TYPE_KEYS) {
    const v = annotations?.[k]
    if (v !== undefined) return v
  }
  return undefined
}

function parseInt64(v: string | undefined, unsigned: boolean): bigint {
  const s = v?.trim()
  if (s === undefined || !(unsigned ? /^\+?\d+$/ : /^[+-]?\d+$/).test(s)) return 0n
  const n = BigInt(s)
  const max = unsigned ? 0xffffffffffffffffn : 0x7fffffffffffffffn
  return n > max || n < -0x8000000000000000n ? 0n : n
}

/** Request from the sandbox annotations (containerd key names, also used for CRI-O). */
export function workloadFromAnnotations(annotations: Record<string, string> = {}): WorkloadRequest {
  const period = parseInt64(annotations[ANNO_SANDBOX_CPU_PERIOD], true)
  const quota = parseInt64(annotations[ANNO_SANDBOX_CPU_QUOTA], false)
  const memory = parseInt64(annotations[ANNO_SANDBOX_MEMORY], false)
  return { vcpu: vcpuFromQuotaPeriod(quota, period), memMb: bytesToMib(memory) }
}

/** Request from an OCI spec: sandbox containers read the annotations, others `linux.resources`. */
export function workloadFromSpec(spec: OciSizingSpec): WorkloadRequest {
  const type = containerType(spec.annotations)
  if (type !== undefined && SANDBOX_TYPES.includes(type)) return workloadFromAnnotations(spec.annotations)
  const cpu = spec.linux?.resources?.cpu
  const period = cpu?.period ?? 0
  const quota = cpu?.quota ?? -1
  let vcpu = 0
  if (Number(quota) >= 0 && Number(period) > 0) vcpu = vcpuFromQuotaPeriod(quota, period)
  else if (cpu?.cpus) vcpu = Math.fround(cpusetCount(cpu.cpus) ?? 0)
  const limit = spec.linux?.resources?.memory?.limit
  return { vcpu, memMb: limit === undefined ? 0 : bytesToMib(limit) }
}

/**
 * Source selection + supplement (§6.1): size from the spec when there is one, else from the
 * sandbox annotations; then each zero field is replaced by the annotation value.
 */
export function initialWorkload(input: { spec?: OciSizingSpec; annotations?: Record<string, string> }): WorkloadRequest {
  const annotations = input.annotations ?? input.spec?.annotations ?? {}
  const fromAnno = workloadFromAnnotations(annotations)
  const base = input.spec ? workloadFromSpec(input.spec) : fromAnno
  return { vcpu: base.vcpu === 0 ? fromAnno.vcpu : base.vcpu, memMb: base.memMb === 0 ? fromAnno.memMb : base.memMb }
}
