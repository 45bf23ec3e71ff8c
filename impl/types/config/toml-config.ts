// The configuration model (runtime-rs `TomlConfig`, kata-types/src/config): `[runtime]`,
// `[hypervisor.<name>]` (with `[hypervisor.<name>.factory]`) and `[agent.<name>]`.
// Field names are the TOML keys in camelCase; schema.ts maps them back.

export interface FactoryConfig {
  /** `enable_template` (bool, default false). */
  enableTemplate: boolean
  /** `template_path` (string; "" → `/run/vc/vm/template`). */
  templatePath: string
}

export interface HypervisorConfig {
  /** Section name (`qemu` in `[hypervisor.qemu]`); runtime-rs picks the driver by this name. */
  name: string
  path: string
  kernel: string
  image: string
  initrd: string
  firmware: string
  machineType: string
  kernelParams: string
  /** f32 vCPUs (float in TOML, integer accepted). */
  defaultVcpus: number
  defaultMaxvcpus: number
  /** MiB. */
  defaultMemory: number
  /** MiB. */
  defaultMaxmemory: number
  memorySlots: number
  /** f32 vCPUs added to the workload request by static sizing. */
  overheadVcpus: number
  /** MiB added to the workload request by static sizing. */
  overheadMemory: number
  defaultBridges: number
  blockDeviceDriver: string
  blockDeviceAio: string
  blockDeviceCacheDirect: boolean
  disableBlockDeviceUse: boolean
  enableIothreads: boolean
  indepIothreads: number
  networkQueues: number
  sharedFs: string
  confidentialGuest: boolean
  enableDebug: boolean
  logLevel: string
  factory: FactoryConfig
}

export interface RuntimeConfig {
  name: string
  hypervisorName: string
  agentName: string
  enableDebug: boolean
  logLevel: string
  staticSandboxResourceMgmt: boolean
  /** Directory of DAN files (`<dan_conf>/<sandbox-id>.json`). */
  danConf: string
  experimental: string[]
  /**
   * Go runtime boolean (TEE templates). runtime-rs ignores it; kataref treats it as an alias of
   * `experimental = ["force_guest_pull"]` so a Go-style file does not silently lose guest pull.
   */
  experimentalForceGuestPull: boolean
  /**
   * Go runtime key (runtime-rs removed it in b20f974ddd). kataref keeps Go's meaning and default
   * (true) because it implements both emptyDir modes; see impl/runtime/volume/empty-dir.ts.
   */
  disableGuestEmptyDir: boolean
  /** Go runtime key: `shared-fs` | `block-encrypted` | `block-plain`. */
  emptydirMode: string
}

export interface AgentConfig {
  name: string
  enableDebug: boolean
  logLevel: string
  kernelModules: string[]
}

export interface KatarefConfig {
  runtime: RuntimeConfig
  /** Keyed by section name. */
  hypervisor: Record<string, HypervisorConfig>
  /** Keyed by section name. */
  agent: Record<string, AgentConfig>
}

/** What the host offers; adjust() clamps vCPUs and memory to it. Injected in tests. */
export interface HostResources {
  cpus: number
  /** Total RAM in MiB. */
  memoryMiB: number
}

export const DEFAULT_TEMPLATE_PATH = '/run/vc/vm/template'
export const DEFAULT_DAN_CONF = '/run/kata-containers/dans'
