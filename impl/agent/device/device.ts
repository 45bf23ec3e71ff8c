// Devices of CreateContainer (spec §3 "Handlers", "Device info and spec update"): validation in
// upstream's order, the blk (virtio-blk PCI) handler waiting for its uevent, DeviceInfo, and the
// OCI spec update (linux.devices get the guest major/minor of the resolved node).
import { stat } from 'node:fs/promises'
import { Code, KatarefError } from '../../types/errors.ts'
import { exists } from '../fs-util.ts'
import { blkPciMatcher, mmioBlkMatcher, scsiMatcher, type UeventMatcher } from './matchers.ts'
import { deviceTreeToPciPath, pcipathToSysfs, rootBusPath } from './pci.ts'
import type { Uevent } from './matchers.ts'

export class DeviceError extends KatarefError {
  constructor(message: string, code: Code = Code.INVALID_ARGUMENT, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, context, options)
  }
}

export interface DeviceLike {
  id: string
  type: string
  vmPath: string
  containerPath: string
  options: string[]
}

export interface DeviceInfo {
  type: 'b' | 'c'
  major: number
  minor: number
  path: string
}

const S_IFMT = 0o170000
const S_IFBLK = 0o060000
const S_IFCHR = 0o020000

export const major = (dev: number) => Number((BigInt(dev) >> 8n) & 0xfffn) | Number((BigInt(dev) >> 32n) & ~0xfffn)
export const minor = (dev: number) => Number(BigInt(dev) & 0xffn) | Number((BigInt(dev) >> 12n) & ~0xffn)

/** DeviceInfo(vm_path, is_rdev): rdev of a b/c node, or st_dev of the filesystem (type always b). */
export async function deviceInfo(vmPath: string, isRdev: boolean): Promise<DeviceInfo> {
  if (vmPath === '') throw new DeviceError('device path is empty')
  let st
  try {
    st = await stat(vmPath)
  } catch (e) {
    throw new DeviceError(`device ${vmPath}: ${(e as NodeJS.ErrnoException).code}`, Code.NOT_FOUND, { vmPath }, { cause: e })
  }
  if (!isRdev) return { type: 'b', major: major(st.dev), minor: minor(st.dev), path: vmPath }
  const fmt = st.mode & S_IFMT
  if (fmt !== S_IFBLK && fmt !== S_IFCHR) throw new DeviceError(`${vmPath} is neither a block nor a character device`, Code.INVALID_ARGUMENT, { vmPath })
  return { type: fmt === S_IFBLK ? 'b' : 'c', major: major(st.rdev), minor: minor(st.rdev), path: vmPath }
}

export const KNOWN_TYPES = ['blk', 'mmioblk', 'scsi', 'nvdimm', 'vfio-pci', 'vfio-pci-gk', 'vfio-ap', 'vfio-ap-cold', 'blk-ccw']

/** add_devices validation per device, in upstream's order; nothing is applied when any fails. */
export function validateDevice(d: DeviceLike): void {
  if (d.type === '') throw new DeviceError('invalid type for device', Code.INVALID_ARGUMENT, { device: d })
  if (d.id === '' && d.vmPath === '') throw new DeviceError('invalid ID and VM path for device', Code.INVALID_ARGUMENT, { device: d })
  if (d.containerPath === '') throw new DeviceError('invalid container path for device', Code.INVALID_ARGUMENT, { device: d })
  if (!KNOWN_TYPES.includes(d.type)) throw new DeviceError(`Failed to find the device handler ${d.type}`, Code.INVALID_ARGUMENT, { type: d.type })
}

export interface DeviceEnv {
  sysRoot?: string
  waitFor(matcher: UeventMatcher, timeoutMs?: number): Promise<Uevent>
  timeoutMs?: number
}

export interface ResolvedDevice {
  containerPath: string
  vmPath: string
}

/** Resolves one device to its guest node path (`/dev/<DEVNAME>`). */
export async function resolveDevice(d: DeviceLike, env: DeviceEnv): Promise<ResolvedDevice> {
  validateDevice(d)
  switch (d.type) {
    case 'blk': {
      const { rootComplex, path } = deviceTreeToPciPath(d.id)
      const rb = rootBusPath(rootComplex)
      const rel = await pcipathToSysfs(env.sysRoot ?? '/sys', rb, path)
      const ev = await env.waitFor(blkPciMatcher(rb, rel), env.timeoutMs)
      return { containerPath: d.containerPath, vmPath: `/dev/${ev.devname}` }
    }
    case 'mmioblk': {
      if (d.vmPath === '') throw new DeviceError('Invalid path for virtio mmio blk device', Code.INVALID_ARGUMENT, { device: d })
      if (!d.vmPath.startsWith('/dev/')) throw new DeviceError(`virtio mmio blk path ${d.vmPath} is not under /dev/`)
      if (!(await exists(d.vmPath))) {
        const ev = await env.waitFor(mmioBlkMatcher(d.vmPath.slice('/dev/'.length)), env.timeoutMs)
        if (`/dev/${ev.devname}` !== d.vmPath) throw new DeviceError(`uevent devname ${ev.devname} differs from ${d.vmPath}`)
      }
      return { containerPath: d.containerPath, vmPath: d.vmPath }
    }
    case 'scsi': {
      const parts = d.id.split(':')
      if (parts.length !== 2) throw new DeviceError(`invalid SCSI address ${JSON.stringify(d.id)}`)
      const { scanScsiBus } = await import('./sysfs-ops.ts')
      await scanScsiBus(env.sysRoot ?? '/sys', d.id)
      const ev = await env.waitFor(scsiMatcher(d.id), env.timeoutMs)
      return { containerPath: d.containerPath, vmPath: `/dev/${ev.devname}` }
    }
    case 'nvdimm':
      if (d.vmPath === '') throw new DeviceError('Invalid path for nvdimm device')
      return { containerPath: d.containerPath, vmPath: d.vmPath }
    case 'vfio-ap':
    case 'vfio-ap-cold':
      throw new DeviceError('VFIO-AP is only supported on s390x', Code.UNIMPLEMENTED)
    default:
      throw new DeviceError(`device type ${d.type} is not supported by this agent yet`, Code.UNIMPLEMENTED, { type: d.type })
  }
}

/** Resolves every device (validation of all first); two resolving for one container_path → "Conflicting device updates". */
export async function addDevices(devices: readonly DeviceLike[], env: DeviceEnv): Promise<Map<string, DeviceInfo>> {
  for (const d of devices) validateDevice(d)
  const out = new Map<string, DeviceInfo>()
  for (const d of devices) {
    const r = await resolveDevice(d, env)
    if (out.has(r.containerPath)) throw new DeviceError(`Conflicting device updates for ${r.containerPath}`)
    out.set(r.containerPath, await deviceInfo(r.vmPath, true))
  }
  return out
}
