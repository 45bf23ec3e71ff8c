// adjust + validate (kata-types `adjust_config` / `validate`): turns serde defaults into the
// effective values and rejects impossible ones, naming the file and the key.
import { ConfigError } from './config-error.ts'
import { experimentalWarnings } from './experimental.ts'
import { keyName } from './schema.ts'
import { DEFAULT_TEMPLATE_PATH, type HostResources, type HypervisorConfig, type KatarefConfig } from './toml-config.ts'

export const VIRTIO_BLK_PCI = 'virtio-blk-pci'
export const VIRTIO_BLK_CCW = 'virtio-blk-ccw'
export const VIRTIO_BLK_MMIO = 'virtio-blk-mmio'
export const VIRTIO_PMEM = 'virtio-pmem'
export const VIRTIO_SCSI = 'virtio-scsi'
export const BLOCK_DEVICE_DRIVERS: readonly string[] = [VIRTIO_BLK_PCI, VIRTIO_BLK_CCW, VIRTIO_BLK_MMIO, VIRTIO_PMEM, VIRTIO_SCSI]
export const BLOCK_DEVICE_AIO_MODES: readonly string[] = ['io_uring', 'native', 'threads']
export const EMPTYDIR_MODES: readonly string[] = ['shared-fs', 'block-encrypted', 'block-plain']
export const LOG_LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const

/** Hypervisors whose memory adjust turns 0 MiB into 128 MiB (QEMU, CH, Dragonball, Firecracker). */
const MEMORY_DEFAULTED = ['qemu', 'cloud-hypervisor', 'dragonball', 'firecracker']
export const DEFAULT_GUEST_MEMORY_MIB = 128
export const QEMU_MIN_MEMORY_MIB = 64
export const QEMU_MAX_VCPUS = 256

export interface AdjustContext {
  file: string
  host: HostResources
  warnings: string[]
}

/** Adjusts and validates a whole config in place. */
export function adjustConfig(config: KatarefConfig, ctx: AdjustContext): void {
  const rt = config.runtime
  for (const hv of Object.values(config.hypervisor)) adjustHypervisor(hv, ctx, rt.staticSandboxResourceMgmt)
  const hvNames = Object.keys(config.hypervisor)
  if (rt.hypervisorName === '' && hvNames.length === 1) rt.hypervisorName = hvNames[0]!
  else if (rt.hypervisorName !== '' && !config.hypervisor[rt.hypervisorName]) {
    throw new ConfigError(ctx.file, keyName('runtime', 'hypervisor_name'),
      `no [hypervisor.${rt.hypervisorName}] section (sections: ${hvNames.join(', ') || 'none'})`)
  }
  const agentNames = Object.keys(config.agent)
  if (rt.agentName === '' && agentNames.length === 1) rt.agentName = agentNames[0]!
  else if (rt.agentName !== '' && !config.agent[rt.agentName]) {
    throw new ConfigError(ctx.file, keyName('runtime', 'agent_name'),
      `no [agent.${rt.agentName}] section (sections: ${agentNames.join(', ') || 'none'})`)
  }
  if (!EMPTYDIR_MODES.includes(rt.emptydirMode)) {
    throw new ConfigError(ctx.file, keyName('runtime', 'emptydir_mode'),
      `${JSON.stringify(rt.emptydirMode)} is not a valid emptyDir mode; expected one of ${EMPTYDIR_MODES.join(', ')}`)
  }
  ctx.warnings.push(...experimentalWarnings(rt.experimental).map((w) => `${ctx.file}: ${w}`))
  warnLogLevel(rt.logLevel, 'runtime', ctx)
  for (const a of Object.values(config.agent)) warnLogLevel(a.logLevel, `agent.${a.name}`, ctx)
  for (const hv of Object.values(config.hypervisor)) warnLogLevel(hv.logLevel, `hypervisor.${hv.name}`, ctx)
}

function warnLogLevel(level: string, section: string, ctx: AdjustContext): void {
  if (!(LOG_LEVEL_NAMES as readonly string[]).includes(level)) {
    ctx.warnings.push(`${ctx.file}: ${keyName(section, 'log_level')}: unknown level ${JSON.stringify(level)} means info; known: ${LOG_LEVEL_NAMES.join(', ')}`)
  }
}

/**
 * `staticSizing` is `[runtime] static_sandbox_resource_mgmt`. When on, a configured default_memory
 * of 0 is kept: it means "no memory fallback", and static sizing rejects a sandbox without a memory
 * limit with the 0 MiB error (kataref issue 6) instead of booting the 128 MiB adjust default.
 */
export function adjustHypervisor(hv: HypervisorConfig, ctx: AdjustContext, staticSizing = false): void {
  const section = `hypervisor.${hv.name}`
  const err = (key: string, problem: string) => new ConfigError(ctx.file, keyName(section, key), problem)
  const isQemu = hv.name === 'qemu'
  const { cpus, memoryMiB } = ctx.host

  // CpuInfo: maxvcpus first, then vcpus (which is lowered to maxvcpus).
  if (hv.defaultMaxvcpus === 0 || hv.defaultMaxvcpus > cpus) hv.defaultMaxvcpus = cpus
  if (hv.defaultVcpus === 0) hv.defaultVcpus = 1
  else if (hv.defaultVcpus < 0 || hv.defaultVcpus > cpus) hv.defaultVcpus = Math.fround(cpus)
  if (hv.defaultVcpus > hv.defaultMaxvcpus) hv.defaultVcpus = Math.fround(hv.defaultMaxvcpus)
  if (isQemu && hv.defaultVcpus > QEMU_MAX_VCPUS) throw err('default_vcpus', `Qemu hypervisor supports at most ${QEMU_MAX_VCPUS} vCPUs, got ${hv.defaultVcpus}`)
  if (isQemu && hv.defaultMaxvcpus > QEMU_MAX_VCPUS) throw err('default_maxvcpus', `Qemu hypervisor supports at most ${QEMU_MAX_VCPUS} vCPUs, got ${hv.defaultMaxvcpus}`)

  // MemoryInfo. Deviation (issue 6 over spec §11): with static sizing on, 0 stays 0 and is
  // judged per sandbox by applyInitialSize (limit + overhead, else the 0 MiB error).
  const keepZero = hv.defaultMemory === 0 && staticSizing
  if (!keepZero) {
    if (hv.defaultMemory === 0 && MEMORY_DEFAULTED.includes(hv.name)) hv.defaultMemory = DEFAULT_GUEST_MEMORY_MIB
    if (hv.defaultMemory > memoryMiB) hv.defaultMemory = memoryMiB
    if (hv.defaultMemory === 0) throw err('default_memory', 'Configured memory size for guest VM is zero')
    if (isQemu && hv.defaultMemory < QEMU_MIN_MEMORY_MIB) throw err('default_memory', `Qemu hypervisor has minimal memory limitation ${QEMU_MIN_MEMORY_MIB}`)
  }
  if (hv.defaultMaxmemory === 0 || hv.defaultMaxmemory > memoryMiB) hv.defaultMaxmemory = memoryMiB

  // BlockDeviceInfo.
  if (hv.disableBlockDeviceUse) {
    hv.blockDeviceDriver = ''
  } else {
    if (hv.blockDeviceDriver === '') hv.blockDeviceDriver = VIRTIO_BLK_PCI
    if (!BLOCK_DEVICE_DRIVERS.includes(hv.blockDeviceDriver)) throw err('block_device_driver', `${hv.blockDeviceDriver} is unsupported block device type.`)
    if (isQemu && hv.blockDeviceDriver === VIRTIO_BLK_MMIO) throw err('block_device_driver', `Qemu doesn't support ${VIRTIO_BLK_MMIO}`)
  }
  if (hv.blockDeviceAio === '') hv.blockDeviceAio = 'io_uring'
  if (!BLOCK_DEVICE_AIO_MODES.includes(hv.blockDeviceAio)) {
    throw err('block_device_aio', `${hv.blockDeviceAio} is unsupported block device AIO mode; expected one of ${BLOCK_DEVICE_AIO_MODES.join(', ')}`)
  }

  // Factory.
  if (hv.factory.templatePath === '') hv.factory.templatePath = DEFAULT_TEMPLATE_PATH
}
