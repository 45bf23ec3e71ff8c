// QEMU `-smp` / `-m` as runtime-rs cmdline_generator.rs prints them (spec §6.2), from a sized
// hypervisor section. Pure: the QEMU cmdline builder appends these.
import type { HypervisorConfig } from '../../../types/config/index.ts'

/** vCPUs QEMU boots with: ceil(default_vcpus). */
export function bootVcpus(hv: Pick<HypervisorConfig, 'defaultVcpus'>): number {
  return Math.ceil(hv.defaultVcpus)
}

/** `-smp <n>[,maxcpus=<m>]`: maxcpus only when larger than n and not confidential. */
export function qemuSmpArgs(hv: Pick<HypervisorConfig, 'defaultVcpus' | 'defaultMaxvcpus' | 'confidentialGuest'>): [string, string] {
  const n = bootVcpus(hv)
  const withMax = !hv.confidentialGuest && hv.defaultMaxvcpus > n
  return ['-smp', withMax ? `${n},maxcpus=${hv.defaultMaxvcpus}` : String(n)]
}

/** `<n>G` for a whole number of GiB, else `<n>M`. */
export function qemuMemorySize(mib: number): string {
  return mib > 0 && mib % 1024 === 0 ? `${mib / 1024}G` : `${mib}M`
}

/** `-m <size>[,slots=<memory_slots>,maxmem=<max>]`; slots/maxmem omitted when confidential or zero. */
export function qemuMemoryArgs(
  hv: Pick<HypervisorConfig, 'defaultMemory' | 'defaultMaxmemory' | 'memorySlots' | 'confidentialGuest'>,
): [string, string] {
  const size = qemuMemorySize(hv.defaultMemory)
  const withMax = !hv.confidentialGuest && hv.memorySlots > 0 && hv.defaultMaxmemory > 0
  return ['-m', withMax ? `${size},slots=${hv.memorySlots},maxmem=${qemuMemorySize(hv.defaultMaxmemory)}` : size]
}
