// Facts about the machine a run happened on, recorded in every report.
import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { hostname, release, arch } from 'node:os'
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
  let accel: HostFacts['accel'] = 'tcg'
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK)
    accel = 'kvm'
  } catch {
    // TCG
  }
  return { kernel: release(), arch: arch(), qemu, accel, hostname: hostname() }
}
