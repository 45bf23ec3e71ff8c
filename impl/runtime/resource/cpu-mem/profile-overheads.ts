// §6.3: overhead pairs of the runtime-rs templates at HEAD (all ship static_sandbox_resource_mgmt
// = true). kataref ships only the QEMU profile (config/configuration-kataref.toml); the table is
// kept for reference and for building the other profiles in tests.

export interface ProfileOverhead {
  defaultVcpus: number
  defaultMemory: number
  overheadVcpus: number
  overheadMemory: number
}

export const PROFILE_OVERHEADS: Readonly<Record<string, ProfileOverhead>> = {
  'qemu-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.2, overheadMemory: 32 },
  'qemu-coco-dev-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.4, overheadMemory: 128 },
  'qemu-snp-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.4, overheadMemory: 128 },
  'qemu-tdx-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.4, overheadMemory: 128 },
  'qemu-se-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.4, overheadMemory: 768 },
  'qemu-nvidia-gpu-runtime-rs': { defaultVcpus: 1, defaultMemory: 8192, overheadVcpus: 0.5, overheadMemory: 512 },
  'qemu-nvidia-gpu-snp-runtime-rs': { defaultVcpus: 1, defaultMemory: 8192, overheadVcpus: 0.5, overheadMemory: 512 },
  'qemu-nvidia-gpu-tdx-runtime-rs': { defaultVcpus: 1, defaultMemory: 8192, overheadVcpus: 0.5, overheadMemory: 512 },
  'qemu-nvidia-cpu-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.2, overheadMemory: 128 },
  'clh-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.2, overheadMemory: 32 },
  'clh-azure-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.2, overheadMemory: 32 },
  dragonball: { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.2, overheadMemory: 32 },
  'openvmm-azure-runtime-rs': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0.2, overheadMemory: 32 },
  remote: { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0, overheadMemory: 0 },
  'rs-fc': { defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: 0, overheadMemory: 0 },
}
