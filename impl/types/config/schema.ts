// Key tables for every section kataref models: TOML key, property, type and serde default
// (the value used when the key is absent, before adjust/validate). The reader is generic over
// these tables so the type check and its error text are the same for every key.
import { ConfigError, typeProblem } from './config-error.ts'
import type { AgentConfig, FactoryConfig, HypervisorConfig, RuntimeConfig } from './toml-config.ts'

export type KeyType = 'bool' | 'string' | 'u32' | 'float' | 'string[]'

export interface KeySpec<T> {
  key: string
  prop: keyof T & string
  type: KeyType
  default: unknown
}

const EXPECTED: Record<KeyType, string> = {
  bool: 'boolean',
  string: 'string',
  u32: 'integer in 0..4294967295',
  float: 'number (float or integer)',
  'string[]': 'array of strings',
}

export function expectedTypeName(type: KeyType): string {
  return EXPECTED[type]
}

type HvScalar = Exclude<keyof HypervisorConfig, 'name' | 'factory'>

export const HYPERVISOR_KEYS: readonly KeySpec<Pick<HypervisorConfig, HvScalar>>[] = [
  { key: 'path', prop: 'path', type: 'string', default: '' },
  { key: 'kernel', prop: 'kernel', type: 'string', default: '' },
  { key: 'image', prop: 'image', type: 'string', default: '' },
  { key: 'initrd', prop: 'initrd', type: 'string', default: '' },
  { key: 'firmware', prop: 'firmware', type: 'string', default: '' },
  { key: 'machine_type', prop: 'machineType', type: 'string', default: '' },
  { key: 'kernel_params', prop: 'kernelParams', type: 'string', default: '' },
  { key: 'default_vcpus', prop: 'defaultVcpus', type: 'float', default: 0 },
  { key: 'default_maxvcpus', prop: 'defaultMaxvcpus', type: 'u32', default: 0 },
  { key: 'default_memory', prop: 'defaultMemory', type: 'u32', default: 0 },
  { key: 'default_maxmemory', prop: 'defaultMaxmemory', type: 'u32', default: 0 },
  { key: 'memory_slots', prop: 'memorySlots', type: 'u32', default: 0 },
  { key: 'overhead_vcpus', prop: 'overheadVcpus', type: 'float', default: 0 },
  { key: 'overhead_memory', prop: 'overheadMemory', type: 'u32', default: 0 },
  { key: 'default_bridges', prop: 'defaultBridges', type: 'u32', default: 0 },
  { key: 'block_device_driver', prop: 'blockDeviceDriver', type: 'string', default: '' },
  { key: 'block_device_aio', prop: 'blockDeviceAio', type: 'string', default: '' },
  { key: 'block_device_cache_direct', prop: 'blockDeviceCacheDirect', type: 'bool', default: false },
  { key: 'disable_block_device_use', prop: 'disableBlockDeviceUse', type: 'bool', default: false },
  { key: 'enable_iothreads', prop: 'enableIothreads', type: 'bool', default: false },
  { key: 'indep_iothreads', prop: 'indepIothreads', type: 'u32', default: 0 },
  { key: 'network_queues', prop: 'networkQueues', type: 'u32', default: 0 },
  { key: 'shared_fs', prop: 'sharedFs', type: 'string', default: '' },
  { key: 'confidential_guest', prop: 'confidentialGuest', type: 'bool', default: false },
  { key: 'enable_debug', prop: 'enableDebug', type: 'bool', default: false },
  { key: 'log_level', prop: 'logLevel', type: 'string', default: 'info' },
]

export const FACTORY_KEYS: readonly KeySpec<FactoryConfig>[] = [
  { key: 'enable_template', prop: 'enableTemplate', type: 'bool', default: false },
  { key: 'template_path', prop: 'templatePath', type: 'string', default: '' },
]

export const RUNTIME_KEYS: readonly KeySpec<RuntimeConfig>[] = [
  { key: 'name', prop: 'name', type: 'string', default: '' },
  { key: 'hypervisor_name', prop: 'hypervisorName', type: 'string', default: '' },
  { key: 'agent_name', prop: 'agentName', type: 'string', default: '' },
  { key: 'enable_debug', prop: 'enableDebug', type: 'bool', default: false },
  { key: 'log_level', prop: 'logLevel', type: 'string', default: 'info' },
  { key: 'static_sandbox_resource_mgmt', prop: 'staticSandboxResourceMgmt', type: 'bool', default: false },
  { key: 'dan_conf', prop: 'danConf', type: 'string', default: '' },
  { key: 'experimental', prop: 'experimental', type: 'string[]', default: [] },
  { key: 'experimental_force_guest_pull', prop: 'experimentalForceGuestPull', type: 'bool', default: false },
  { key: 'disable_guest_empty_dir', prop: 'disableGuestEmptyDir', type: 'bool', default: true },
  { key: 'emptydir_mode', prop: 'emptydirMode', type: 'string', default: 'shared-fs' },
]

export const AGENT_KEYS: readonly KeySpec<Omit<AgentConfig, 'name'>>[] = [
  { key: 'enable_debug', prop: 'enableDebug', type: 'bool', default: false },
  { key: 'log_level', prop: 'logLevel', type: 'string', default: 'info' },
  { key: 'kernel_modules', prop: 'kernelModules', type: 'string[]', default: [] },
]

export interface SectionContext {
  file: string
  /** Dotted section name without brackets: `runtime`, `hypervisor.qemu.factory`. */
  section: string
  warnings: string[]
  /** Unknown keys are an error (serde `deny_unknown_fields`) instead of a warning. */
  denyUnknown?: boolean
  /** Keys that are neither modelled nor warned about (handled elsewhere, e.g. sub-tables). */
  skip?: readonly string[]
}

export function keyName(section: string, key: string): string {
  return `[${section}] ${key}`
}

/** Serde defaults of a key table, as a fresh object (arrays copied). */
export function defaultsOf<T>(specs: readonly KeySpec<T>[]): T {
  const out: Record<string, unknown> = {}
  for (const s of specs) out[s.prop] = Array.isArray(s.default) ? [...s.default] : s.default
  return out as T
}

/** Reads one TOML table against a key table: type-checks every known key, applies serde defaults. */
export function readSection<T>(table: Record<string, unknown>, specs: readonly KeySpec<T>[], ctx: SectionContext): T {
  const out = defaultsOf(specs) as Record<string, unknown>
  const known = new Map(specs.map((s) => [s.key, s]))
  for (const [key, value] of Object.entries(table)) {
    const spec = known.get(key)
    if (!spec) {
      if (ctx.skip?.includes(key)) continue
      if (ctx.denyUnknown) {
        throw new ConfigError(ctx.file, keyName(ctx.section, key),
          `unknown key (this section rejects unknown fields; known keys: ${specs.map((s) => s.key).join(', ')})`)
      }
      ctx.warnings.push(`${ctx.file}: ${keyName(ctx.section, key)}: unknown key ignored`)
      continue
    }
    out[spec.prop] = convert(value, spec.type, ctx.file, keyName(ctx.section, key))
  }
  return out as T
}

export function convert(value: unknown, type: KeyType, file: string, key: string): unknown {
  const fail = (): never => {
    throw new ConfigError(file, key, typeProblem(EXPECTED[type], value), { expected: EXPECTED[type] })
  }
  switch (type) {
    case 'bool':
      return typeof value === 'boolean' ? value : fail()
    case 'string':
      return typeof value === 'string' ? value : fail()
    case 'u32':
      if (typeof value === 'bigint' && value >= 0n && value <= 0xffffffffn) return Number(value)
      return fail()
    case 'float':
      if (typeof value === 'bigint') return Math.fround(Number(value))
      if (typeof value === 'number' && Number.isFinite(value)) return Math.fround(value)
      return fail()
    case 'string[]':
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return [...(value as string[])]
      return fail()
  }
}

export function isTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
}
