// update_spec_devices (spec §3 "Device info and spec update"): each linux.devices entry whose path
// was resolved gets the guest major/minor (and optionally a new path); linux.resources.devices rules
// keyed by (type, host major, host minor) are rewritten to the guest numbers.
import { Code } from '../../types/errors.ts'
import { DeviceError, type DeviceInfo } from './device.ts'

export interface SpecDeviceLike {
  Path: string
  Type: string
  Major: bigint
  Minor: bigint
}
export interface DeviceRuleLike {
  Allow: boolean
  Type: string
  Major: bigint
  Minor: bigint
  Access: string
}
export interface SpecLike {
  Linux?: { Devices: SpecDeviceLike[]; Resources?: { Devices: DeviceRuleLike[] } | undefined } | undefined
}

export interface DeviceUpdate {
  info: DeviceInfo
  /** New path inside the container (optional). */
  finalPath?: string
}

export function updateSpecDevices(spec: SpecLike, updates: ReadonlyMap<string, DeviceUpdate>): void {
  const devices = spec.Linux?.Devices ?? []
  const byPath = new Map(devices.map((d) => [d.Path, d]))
  for (const p of updates.keys()) {
    if (!byPath.has(p)) throw new DeviceError(`Missing devices in OCI spec: ${p}`, Code.INVALID_ARGUMENT, { containerPath: p })
  }
  const ruleUpdates = new Map<string, { major: bigint; minor: bigint }>()
  for (const [p, u] of updates) {
    const d = byPath.get(p)!
    const key = `${d.Type}:${d.Major}:${d.Minor}`
    if (ruleUpdates.has(key)) throw new DeviceError(`Conflicting resource updates for host device ${key}`, Code.INVALID_ARGUMENT, { key })
    ruleUpdates.set(key, { major: BigInt(u.info.major), minor: BigInt(u.info.minor) })
    d.Major = BigInt(u.info.major)
    d.Minor = BigInt(u.info.minor)
    if (u.finalPath) d.Path = u.finalPath
  }
  for (const r of spec.Linux?.Resources?.Devices ?? []) {
    const u = ruleUpdates.get(`${r.Type}:${r.Major}:${r.Minor}`)
    if (u) {
      r.Major = u.major
      r.Minor = u.minor
    }
  }
}
