import { afterEach, describe, expect, it } from 'vitest'
import type { BlockModernDevice, DeviceKind, DeviceType } from '../../../device/device-types.ts'
import { hotplugDevice, hotunplugDevice, removeDevice, initHotplugContext, type QemuDeviceState, type QemuHotplugConfig } from './hotplug-dispatcher.ts'
import { CcwSubchannel } from './ccw-subchannel.ts'
import { fakeHarness, fdsetCounter, queryPciWithBridges, tempDir, tempFile, type Harness } from './test-support.ts'

const disk = tempFile(tempDir(), 'disk.raw')
let h: Harness | undefined
afterEach(() => {
  h?.close()
  h = undefined
})

const cfg = (over: Partial<QemuHotplugConfig> = {}): QemuHotplugConfig => ({
  blockDeviceDriver: 'virtio-scsi',
  blockDeviceCacheDirect: false,
  enableIothreads: false,
  indepIothreads: 0,
  ...over,
})
const block = (index: number): BlockModernDevice => ({ deviceId: `dev${index}`, config: { index, pathOnHost: disk, readOnly: false, noDrop: false } })
const deleted = (id: string) => ({ event: { event: 'DEVICE_DELETED', data: { device: id, path: `/machine/peripheral/${id}` } } })

const OTHER_KINDS: DeviceKind[] = ['Network', 'Vfio', 'VfioModern', 'VhostUserBlk', 'VhostUserNetwork', 'ShareFs', 'HybridVsock', 'Vsock', 'Protection', 'PortDevice']

describe('hotunplug dispatcher and removeDevice (spec §5, §14 row 30)', () => {
  it('before QMP is up → `QMP not initialized`', async () => {
    const s: QemuDeviceState = { config: cfg(), hotplug: undefined, coldPlugDevices: [] }
    await expect(hotunplugDevice(s, { kind: 'BlockModern', device: block(0) })).rejects.toThrow(/^QMP not initialized$/)
    await expect(removeDevice(s, { kind: 'Vsock', config: {} })).rejects.toThrow(/^QMP not initialized$/)
  })

  it.each(OTHER_KINDS)('%s → `hotunplug for … is currently unsupported`, no QMP traffic', async (kind) => {
    h = await fakeHarness()
    const s: QemuDeviceState = { config: cfg(), hotplug: h.ctx, coldPlugDevices: [] }
    await expect(removeDevice(s, { kind, config: { id: 'x' } })).rejects.toThrow(new RegExp(`^hotunplug for ${kind}\\(\\{"id":"x"\\}\\) is currently unsupported$`))
    expect(h.peer.commands).toEqual(['qmp_capabilities'])
  })

  it('BlockModern: unplug of (configured driver, index), then only that handle leaves the cold-plug list', async () => {
    h = await fakeHarness()
    const target = block(3)
    const twin = block(3) // equal content, different handle: kept (pointer identity)
    const other: DeviceType = { kind: 'Network', config: { id: 'eth0' } }
    const s: QemuDeviceState = {
      config: cfg(),
      hotplug: h.ctx,
      coldPlugDevices: [{ kind: 'BlockModern', device: target }, { kind: 'BlockModern', device: twin }, other],
    }
    h.peer.expect({ execute: 'device_del', args: { id: 'drive-3' }, events: [deleted('drive-3')] }).expect({ execute: 'blockdev-del', args: { 'node-name': 'drive-3' } })
    await removeDevice(s, { kind: 'BlockModern', device: target })
    h.peer.assertDone()
    expect(s.coldPlugDevices).toEqual([{ kind: 'BlockModern', device: twin }, other])
    expect(s.coldPlugDevices[0]!.kind === 'BlockModern' && s.coldPlugDevices[0]!.device).toBe(twin)
  })

  it('a failed unplug carries context `hotunplug block device` and leaves the list alone', async () => {
    h = await fakeHarness()
    const d = block(9)
    const s: QemuDeviceState = { config: cfg(), hotplug: h.ctx, coldPlugDevices: [{ kind: 'BlockModern', device: d }] }
    h.peer.expect({ execute: 'device_del', error: { class: 'DeviceNotFound', desc: "Device 'drive-9' not found" } })
    await expect(removeDevice(s, { kind: 'BlockModern', device: d })).rejects.toThrow(
      /^hotunplug block device: device_del for block device drive-9: QMP device_del: DeviceNotFound/,
    )
    expect(s.coldPlugDevices).toHaveLength(1)
  })
})

describe('hotplugDevice write-back and iothread choice (spec §3 step 7)', () => {
  it('virtio-blk-pci with iothreads → iothread indep_iothread_0, pciPath written back', async () => {
    h = await fakeHarness({ bridges: 1 })
    const d = block(0)
    const s: QemuDeviceState = { config: cfg({ blockDeviceDriver: 'virtio-blk-pci', enableIothreads: true, indepIothreads: 1 }), hotplug: h.ctx, coldPlugDevices: [] }
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add', args: (a) => (a?.file as Record<string, unknown>).cache !== undefined })
      .expect({ execute: 'device_add', args: (a) => a?.iothread === 'indep_iothread_0' })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 1, qdevId: 'drive-0' }]]) })
    await hotplugDevice(s, { kind: 'BlockModern', device: d })
    h.peer.assertDone()
    expect(d.config.pciPath).toBe('02/01')
  })

  it('virtio-scsi ignores iothreads and writes scsiAddr; ccw writes ccwAddr; errors get `hotplug block device`', async () => {
    h = await fakeHarness({ ccw: new CcwSubchannel(0) })
    const scsi = block(3)
    const s: QemuDeviceState = { config: cfg({ enableIothreads: true, indepIothreads: 1 }), hotplug: h.ctx, coldPlugDevices: [] }
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', args: (a) => a?.iothread === undefined && a?.driver === 'scsi-hd' })
    await hotplugDevice(s, { kind: 'BlockModern', device: scsi })
    expect(scsi.config.scsiAddr).toBe('0:3')

    const ccw = block(4)
    s.config.blockDeviceDriver = 'virtio-blk-ccw'
    h.peer
      .expect({ execute: 'add-fd', returns: () => ({ 'fdset-id': 7, fd: 1 }) })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', args: (a) => a?.devno === 'fe.0.0000' })
    await hotplugDevice(s, { kind: 'BlockModern', device: ccw })
    expect(ccw.config.ccwAddr).toBe('0.0.0000')

    await expect(hotplugDevice(s, { kind: 'BlockModern', device: ccw })).rejects.toThrow(/^hotplug block device: duplicate QEMU block device ID drive-4$/)
    h.peer.assertDone()
  })

  it('initHotplugContext rebuilds the fdset map from query-fdsets and creates the bridges', async () => {
    h = await fakeHarness()
    h.peer.expect({
      execute: 'query-fdsets',
      returns: [
        { 'fdset-id': 0, fds: [{ fd: 30, opaque: 'kata-block:drive-2:block-source' }] },
        { 'fdset-id': 1, fds: [{ fd: 31, opaque: 'someone-else' }] },
        { 'fdset-id': 2, fds: [{ fd: 32, opaque: 'kata-block:drive-2:vmdk-descriptor' }] },
      ],
    })
    const ctx = await initHotplugContext(h.qmp, { defaultBridges: 2 })
    h.peer.assertDone()
    expect(ctx.fdsets.get('drive-2')).toEqual([0, 2])
    expect(ctx.fdsets.nodes()).toEqual(['drive-2'])
    expect(ctx.slots.bridgeIds()).toEqual(['pci-bridge-0', 'pci-bridge-1'])
  })
})
