// What a scenario needs from the host. A missing requirement skips the scenario with a reason;
// an unknown requirement name is a scenario bug and fails it.
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { kvmAvailable } from '../impl/runtime/hypervisor/qemu/qemu.ts'
import { ENV } from './env.ts'

/** Returns null when the requirement is met, else why not. */
type Probe = () => string | null

export function findOnPath(bin: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, bin)
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK)
        return candidate
      }
    } catch {
      // not here
    }
  }
  return null
}

export function qemuBinaryName(arch: string = process.arch): string {
  return arch === 'arm64' ? 'qemu-system-aarch64' : arch === 's390x' ? 'qemu-system-s390x' : 'qemu-system-x86_64'
}

const probes: Record<string, Probe> = {
  qemu: () => (findOnPath(qemuBinaryName()) ? null : `${qemuBinaryName()} not found on PATH`),
  // Same test as the launcher's: /dev/kvm may exist and open yet be unusable (nested VMs).
  kvm: () => (kvmAvailable() ? null : '/dev/kvm is missing, not accessible or unusable (TCG only)'),
  containerd: () => (findOnPath('containerd') ? null : 'containerd not found on PATH'),
  root: () => (process.getuid?.() === 0 ? null : 'needs root'),
}

export const KNOWN_REQUIREMENTS: readonly string[] = Object.keys(probes)

export class UnknownRequirementError extends Error {
  constructor(readonly requirement: string) {
    super(`unknown requirement '${requirement}' (known: ${KNOWN_REQUIREMENTS.join(', ')})`)
    this.name = 'UnknownRequirementError'
  }
}

/** The first missing requirement as a skip reason ("skipped: missing kvm: …"), or null if all are met. */
export function missingRequirement(requires: readonly string[], env: NodeJS.ProcessEnv = process.env): string | null {
  const forced = new Set((env[ENV.assumeMissing] ?? '').split(',').map((s) => s.trim()).filter(Boolean))
  for (const name of requires) {
    const probe = probes[name]
    if (!probe) throw new UnknownRequirementError(name)
    const why = forced.has(name) ? `${ENV.assumeMissing} lists it` : probe()
    if (why) return `skipped: missing ${name}: ${why}`
  }
  return null
}
