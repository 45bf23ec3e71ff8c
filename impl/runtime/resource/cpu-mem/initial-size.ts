// Static sandbox sizing (runtime-rs `InitialSizeManager::setup_config`, spec §6.2): before boot,
// the hypervisor section's default_vcpus / default_memory become overhead + workload request.
import { Code, KatarefError } from '../../../types/errors.ts'
import type { HypervisorConfig, KatarefConfig } from '../../../types/config/index.ts'
import { QEMU_MIN_MEMORY_MIB } from '../../../types/config/index.ts'
import type { WorkloadRequest } from './workload-request.ts'

export class StaticSizingError extends KatarefError {
  constructor(problem: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`failed to setup static resource mgmt config: ${problem}`, Code.INVALID_ARGUMENT, context, options)
  }
}

export interface InitialSizeResult {
  /** A copy of the input config with the sized hypervisor section. */
  config: KatarefConfig
  /** default_memory as it was before sizing (runtime-rs `orig_toml_default_mem`). */
  origTomlDefaultMem: number
}

/**
 * Applies the workload request to `[hypervisor.<runtime.hypervisor_name>]`.
 *
 * kataref decision on upstream-gap 7: upstream sizes a CPU-only limit to `overhead_memory`
 * (32 MiB on the QEMU profile) and never re-validates, so QEMU is asked for less than its
 * 64 MiB minimum. kataref rejects that here with an error naming the computed size, the minimum
 * and the keys to change, instead of letting the boot fail later. Every other upstream behaviour
 * (no host-CPU clamp, gap 8; quota -1 → overhead only, gap 9) is mirrored.
 */
export function applyInitialSize(config: KatarefConfig, request: WorkloadRequest): InitialSizeResult {
  const name = config.runtime.hypervisorName
  const orig = config.hypervisor[name]
  if (!orig) throw new StaticSizingError('failed to get hypervisor config', { hypervisor: name })
  const hv: HypervisorConfig = { ...orig, factory: { ...orig.factory } }
  const origTomlDefaultMem = hv.defaultMemory

  if (config.runtime.staticSandboxResourceMgmt) {
    if (request.vcpu > 0 || request.memMb > 0) {
      hv.defaultVcpus = Math.max(Math.fround(hv.overheadVcpus + request.vcpu), 1)
      hv.defaultMemory = hv.overheadMemory + request.memMb
      hv.defaultMaxmemory = Math.max(hv.defaultMaxmemory, hv.defaultMemory)
      if (name === 'qemu' && hv.defaultMemory > 0 && hv.defaultMemory < QEMU_MIN_MEMORY_MIB) {
        throw new StaticSizingError(
          `computed sandbox memory is ${hv.defaultMemory} MiB for hypervisor '${name}', below QEMU's minimum of ${QEMU_MIN_MEMORY_MIB} MiB ` +
            `(overhead_memory ${hv.overheadMemory} + memory limit ${request.memMb}); set a memory limit or raise overhead_memory (upstream-gap 7)`,
          { hypervisor: name, memoryMiB: hv.defaultMemory, overheadMemory: hv.overheadMemory, requestMemMb: request.memMb },
        )
      }
    }
    hv.defaultMaxvcpus = Math.ceil(hv.defaultVcpus)
  }
  if (hv.defaultMemory === 0) {
    throw new StaticSizingError(
      `computed sandbox memory is 0 MiB for hypervisor '${name}'; set a non-zero memory limit or configure non-zero default_memory/overhead_memory`,
      { hypervisor: name },
    )
  }
  return { config: { ...config, hypervisor: { ...config.hypervisor, [name]: hv } }, origTomlDefaultMem }
}
