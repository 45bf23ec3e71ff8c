// Facts about the machine a run happened on, recorded in every report.
import { execFileSync } from 'node:child_process'
import { hostname, release, arch } from 'node:os'
import { defaultAccel } from '../impl/runtime/hypervisor/qemu/qemu.ts'
import type { HostFacts } from './reporters/model.ts'
import { findOnPath, qemuBinaryName } from './requirements.ts'

export function hostFacts(): HostFacts {
  let qemu: string | null = null
  const bin = findOnPath(qemuBinaryName())
  if (bin) {
    try {
      qemu = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 }).split('\n')[0]?.trim() || null
    } catch {
      qemu = `${bin} (version unknown)`
    }
  }
  // The launcher's own choice: /dev/kvm can exist and open yet be unusable (nested VMs).
  const accel: HostFacts['accel'] = defaultAccel()
  return { kernel: release(), arch: arch(), qemu, accel, hostname: hostname() }
}
