// sysfs side effects of the device handlers (spec §3): SCSI bus scan, PCI driver override,
// IOMMU group lookup, online_device. Every function takes the sysfs root so tests use a mocked tree.
import { readdir, readlink, writeFile, lstat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Code } from '../../types/errors.ts'
import { DeviceError } from './device.ts'

/** Writes `0 <target> <lun>` to every /sys/class/scsi_host/<host>/scan. */
export async function scanScsiBus(sysRoot: string, addr: string): Promise<string[]> {
  const parts = addr.split(':')
  if (parts.length !== 2 || parts.some((p) => p === '')) throw new DeviceError(`invalid SCSI address ${JSON.stringify(addr)}`)
  const [target, lun] = parts as [string, string]
  const hosts = await readdir(`${sysRoot}/class/scsi_host`).catch(() => [] as string[])
  const written: string[] = []
  for (const h of hosts) {
    const f = `${sysRoot}/class/scsi_host/${h}/scan`
    await writeFile(f, `0 ${target} ${lun}`)
    written.push(f)
  }
  return written
}

/**
 * Binds `bdf` to `driver`: driver_override ← driver; if <dev>/driver already links to it → done (no
 * probe); if it links elsewhere → BDF to <dev>/driver/unbind; then BDF to drivers_probe.
 */
export async function pciDriverOverride(sysRoot: string, bdf: string, driver: string): Promise<'already-bound' | 'probed'> {
  const dev = `${sysRoot}/bus/pci/devices/${bdf}`
  await writeFile(`${dev}/driver_override`, driver)
  const current = await readlink(`${dev}/driver`).catch(() => undefined)
  if (current !== undefined && basename(current) === driver) return 'already-bound'
  if (current !== undefined) await writeFile(`${dev}/driver/unbind`, bdf)
  await writeFile(`${sysRoot}/bus/pci/drivers_probe`, bdf)
  return 'probed'
}

/** IOMMU group of a PCI function: absent → undefined; a link whose basename is a number → it; else error. */
export async function iommuGroup(sysRoot: string, bdf: string): Promise<number | undefined> {
  const p = `${sysRoot}/bus/pci/devices/${bdf}/iommu_group`
  const st = await lstat(p).catch(() => undefined)
  if (!st) return undefined
  if (!st.isSymbolicLink()) throw new DeviceError(`${p} is not a symlink`, Code.FAILED_PRECONDITION, { path: p })
  const name = basename(await readlink(p))
  if (!/^\d+$/.test(name)) throw new DeviceError(`${p} does not point to a numbered IOMMU group (${name})`, Code.FAILED_PRECONDITION, { path: p })
  return Number(name)
}

/** online_device: writes "1". */
export async function onlineDevice(path: string): Promise<void> {
  await writeFile(path, '1')
}
