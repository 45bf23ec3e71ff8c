import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { iommuGroup, onlineDevice, pciDriverOverride, scanScsiBus } from './sysfs-ops.ts'

let sys: string
beforeEach(async () => {
  sys = await mkdtemp(join(tmpdir(), 'kataref-sysops-'))
})
afterEach(async () => rm(sys, { recursive: true, force: true }))

describe('device sysfs operations on a mocked tree (spec §3)', () => {
  test('SCSI scan writes "0 <target> <lun>" to every host; bad addresses are refused', async () => {
    for (const h of ['host0', 'host1']) {
      await mkdir(join(sys, 'class/scsi_host', h), { recursive: true })
      await writeFile(join(sys, 'class/scsi_host', h, 'scan'), '')
    }
    expect(await scanScsiBus(sys, '0:1')).toHaveLength(2)
    expect(await readFile(join(sys, 'class/scsi_host/host1/scan'), 'utf8')).toBe('0 0 1')
    await expect(scanScsiBus(sys, '0:1:2')).rejects.toThrow(/invalid SCSI address/)
  })

  test('driver override: already bound → no probe; bound elsewhere → unbind then probe', async () => {
    const bdf = '0000:01:02.0'
    const dev = join(sys, 'bus/pci/devices', bdf)
    await mkdir(join(sys, 'bus/pci/drivers/vfio-pci'), { recursive: true })
    await mkdir(join(sys, 'bus/pci/drivers/virtio-pci'), { recursive: true })
    await writeFile(join(sys, 'bus/pci/drivers/virtio-pci/unbind'), '')
    await mkdir(dev, { recursive: true })
    await symlink('../../../bus/pci/drivers/vfio-pci', join(dev, 'driver'))
    expect(await pciDriverOverride(sys, bdf, 'vfio-pci')).toBe('already-bound')
    expect(await readFile(join(dev, 'driver_override'), 'utf8')).toBe('vfio-pci')
    await rm(join(dev, 'driver'))
    await symlink(join(sys, 'bus/pci/drivers/virtio-pci'), join(dev, 'driver'))
    expect(await pciDriverOverride(sys, bdf, 'vfio-pci')).toBe('probed')
    expect(await readFile(join(sys, 'bus/pci/drivers/virtio-pci/unbind'), 'utf8')).toBe(bdf)
    expect(await readFile(join(sys, 'bus/pci/drivers_probe'), 'utf8')).toBe(bdf)
  })

  test('IOMMU group: absent → none, numbered link → number, a directory → error; online writes 1', async () => {
    const dev = join(sys, 'bus/pci/devices/0000:00:03.0')
    await mkdir(dev, { recursive: true })
    expect(await iommuGroup(sys, '0000:00:03.0')).toBeUndefined()
    await symlink('../../../kernel/iommu_groups/7', join(dev, 'iommu_group'))
    expect(await iommuGroup(sys, '0000:00:03.0')).toBe(7)
    await rm(join(dev, 'iommu_group'))
    await mkdir(join(dev, 'iommu_group'))
    await expect(iommuGroup(sys, '0000:00:03.0')).rejects.toThrow(/not a symlink/)
    await writeFile(join(sys, 'online'), '0')
    await onlineDevice(join(sys, 'online'))
    expect(await readFile(join(sys, 'online'), 'utf8')).toBe('1')
  })
})
