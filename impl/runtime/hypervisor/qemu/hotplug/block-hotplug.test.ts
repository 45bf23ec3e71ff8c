import { afterEach, describe, expect, it } from 'vitest'
import { hotplugBlockDevice, blockdevAddArgs, parseAio, scsiAddressOf } from './block-hotplug.ts'
import { CcwSubchannel } from './ccw-subchannel.ts'
import { fakeHarness, fdsetCounter, queryPciWithBridges, tempDir, tempFile, type Harness } from './test-support.ts'
import { formatPciAddr } from './pci-slots.ts'

const dir = tempDir()
const disk = tempFile(dir, 'disk.raw')
let h: Harness | undefined
afterEach(() => {
  h?.close()
  h = undefined
})

const base = { pathOnHost: disk, aio: 'io_uring', direct: false, readOnly: false, noDrop: false } as const

function rawNode(node: string, fdset: number, opts: { readOnly?: boolean; file?: Record<string, unknown> } = {}): Record<string, unknown> {
  const ro = opts.readOnly ?? false
  const fmt: Record<string, unknown> = { driver: 'raw', 'node-name': node, 'read-only': ro }
  if (ro) fmt['force-share'] = true
  fmt.file = { driver: 'file', filename: `/dev/fdset/${fdset}`, aio: 'io_uring', cache: { direct: false }, 'read-only': ro, ...opts.file }
  return fmt
}

describe('hotplugBlockDevice virtio-scsi (spec §3, §14 rows 19–20)', () => {
  it('index 3 writable: add-fd → blockdev-add raw over file → device_add scsi-hd; returns 0:3', async () => {
    h = await fakeHarness()
    const fdset = fdsetCounter()
    h.peer
      .expect({ execute: 'add-fd', args: { opaque: 'kata-block:drive-3:block-source' }, returns: fdset })
      .expect({ execute: 'blockdev-add', args: rawNode('drive-3', 0) })
      .expect({
        execute: 'device_add',
        args: { driver: 'scsi-hd', drive: 'drive-3', bus: 'scsi0.0', id: 'drive-3', 'scsi-id': 0, lun: 3, 'share-rw': true },
      })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-scsi', index: 3 })).resolves.toEqual({ scsiAddr: '0:3' })
    h.peer.assertDone()
    expect(h.peer.received[1]!.fds).toHaveLength(1)
    expect(h.ctx.fdsets.get('drive-3')).toEqual([0])
  })

  it('index 258 read-only: scsi-id 1, lun 2, force-share, no share-rw', async () => {
    h = await fakeHarness()
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add', args: rawNode('drive-258', 0, { readOnly: true }) })
      .expect({ execute: 'device_add', args: { driver: 'scsi-hd', drive: 'drive-258', bus: 'scsi0.0', id: 'drive-258', 'scsi-id': 1, lun: 2 } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-scsi', index: 258, readOnly: true })).resolves.toEqual({ scsiAddr: '1:2' })
    h.peer.assertDone()
  })

  it('upstream-gap-12.3: index 65536 fails the u16 conversion after blockdev-add; node left behind', async () => {
    h = await fakeHarness()
    h.peer.expect({ execute: 'add-fd', returns: fdsetCounter() }).expect({ execute: 'blockdev-add' })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-scsi', index: 65536 })).rejects.toThrow(/out of range integral type conversion/)
    h.peer.assertDone()
    expect(h.peer.commands).not.toContain('blockdev-del')
  })
})

describe('hotplugBlockDevice virtio-blk-pci (spec §3, §4, §14 row 21)', () => {
  it('first → bus pci-bridge-0 addr 01, path 02/01; second → addr 02, path 02/02', async () => {
    h = await fakeHarness({ bridges: 1 })
    const fdset = fdsetCounter()
    h.peer
      .expect({ execute: 'add-fd', returns: fdset })
      .expect({ execute: 'blockdev-add', args: rawNode('drive-0', 0) })
      .expect({ execute: 'device_add', args: { driver: 'virtio-blk-pci', drive: 'drive-0', id: 'drive-0', bus: 'pci-bridge-0', addr: '01', 'share-rw': true } })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 1, qdevId: 'drive-0' }]]) })
      .expect({ execute: 'add-fd', returns: fdset })
      .expect({ execute: 'blockdev-add', args: rawNode('drive-1', 1) })
      .expect({ execute: 'device_add', args: { driver: 'virtio-blk-pci', drive: 'drive-1', id: 'drive-1', bus: 'pci-bridge-0', addr: '02', 'share-rw': true } })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 1, qdevId: 'drive-0' }, { slot: 2, qdevId: 'drive-1' }]]) })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 0 })).resolves.toEqual({ pciPath: '02/01' })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 1 })).resolves.toEqual({ pciPath: '02/02' })
    h.peer.assertDone()
    expect([...h.ctx.slots.slotsOf('pci-bridge-0')]).toEqual([
      [1, 'drive-0'],
      [2, 'drive-1'],
    ])
  })

  it('iothread, discard, block sizes, direct, no_drop, native aio and host_device are passed through', async () => {
    h = await fakeHarness({ bridges: 1 })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({
        execute: 'blockdev-add',
        args: {
          driver: 'raw',
          'node-name': 'drive-5',
          'read-only': false,
          discard: 'unmap',
          file: { driver: 'file', filename: '/dev/fdset/0', aio: 'native', cache: { direct: false }, 'drop-cache': true, 'read-only': false, discard: 'unmap' },
        },
      })
      .expect({
        execute: 'device_add',
        args: {
          driver: 'virtio-blk-pci',
          drive: 'drive-5',
          discard: true,
          logical_block_size: 4096,
          physical_block_size: 4096,
          id: 'drive-5',
          bus: 'pci-bridge-0',
          addr: '01',
          'share-rw': true,
          iothread: 'indep_iothread_0',
        },
      })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 1, qdevId: 'drive-5' }]]) })
    const r = { ...base, aio: 'native', noDrop: true, discardUnmap: true, logicalBlockSize: 4096, physicalBlockSize: 4096, iothread: 'indep_iothread_0' }
    await hotplugBlockDevice(h.ctx, { ...r, driver: 'virtio-blk-pci', index: 5 })
    h.peer.assertDone()
    expect(blockdevAddArgs('drive-1', '/dev/fdset/1', false, { ...base, driver: 'virtio-blk-pci', index: 1 }).file).toMatchObject({ driver: 'host_device' })
    expect(parseAio('bogus')).toBe('io_uring')
    expect(parseAio('threads')).toBe('threads')
  })

  it('upstream-gap-12.1: slot 10 is written as hex "0a" (QEMU parses addr as hex)', async () => {
    expect(formatPciAddr(10)).toBe('0a')
    expect(formatPciAddr(1)).toBe('01')
    expect(formatPciAddr(30)).toBe('1e')
    // the trigger: upstream's decimal form of slot 10 is "10", which QEMU reads as 0x10 = slot 16
    expect(formatPciAddr(10, 'upstream-decimal')).toBe('10')
    expect(parseInt(formatPciAddr(10, 'upstream-decimal'), 16)).toBe(16)

    h = await fakeHarness({ bridges: 1 })
    for (let s = 1; s <= 9; s++) h.ctx.slots.record('pci-bridge-0', s, `other-${s}`)
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', args: (a) => a?.addr === '0a' })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 10, qdevId: 'drive-10' }]]) })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 10 })).resolves.toEqual({ pciPath: '02/0a' })
    h.peer.assertDone()
  })

  it('falls back to query-pci bridges when the in-memory map is full or empty', async () => {
    h = await fakeHarness({ bridges: 0 })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 1, qdevId: 'x' }, { slot: 2, qdevId: 'y' }]]) })
      .expect({ execute: 'device_add', args: (a) => a?.bus === 'pci-bridge-0' && a?.addr === '03' })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot: 3, qdevId: 'drive-0' }]]) })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 0 })).resolves.toEqual({ pciPath: '02/03' })
    h.peer.assertDone()
  })

  it('no free slot → blockdev-del, remove-fd, `no free slots on PCI bridges`', async () => {
    h = await fakeHarness({ bridges: 0 })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([]) })
      .expect({ execute: 'blockdev-del', args: { 'node-name': 'drive-0' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 0 } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 0 })).rejects.toThrow(/^no free slots on PCI bridges$/)
    h.peer.assertDone()
    expect(h.ctx.fdsets.has('drive-0')).toBe(false)
  })

  it('no free slot and blockdev-del fails → fdsets kept, same error', async () => {
    h = await fakeHarness({ bridges: 0 })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'query-pci', returns: [] })
      .expect({ execute: 'blockdev-del', error: { class: 'GenericError', desc: 'boom' } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 0 })).rejects.toThrow(/^no free slots on PCI bridges$/)
    h.peer.assertDone()
    expect(h.ctx.fdsets.get('drive-0')).toEqual([0])
  })

  it('query-pci failing after device_add → `get device by qdev_id failed`, no rollback, slot not recorded', async () => {
    h = await fakeHarness({ bridges: 1 })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add' })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[]]) })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 0 })).rejects.toThrow('get device by qdev_id failed: no target device found')
    h.peer.assertDone()
    expect(h.ctx.slots.find('drive-0')).toBeUndefined()
  })
})

describe('rollback and early failures (spec §3 steps 1–3, 6; §14 rows 22–24)', () => {
  it('device_add failure → blockdev-del of the same node → remove-fd; error is the device_add one', async () => {
    h = await fakeHarness({ bridges: 1 })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', error: { class: 'GenericError', desc: "Property 'virtio-blk-pci.addr' doesn't take value '30'" } })
      .expect({ execute: 'blockdev-del', args: { 'node-name': 'drive-0' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 0 } })
    const err = await hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-pci', index: 0 }).then(() => new Error('expected a failure'), (e: Error) => e)
    expect(err.message).toBe("device_add QMP device_add: GenericError: Property 'virtio-blk-pci.addr' doesn't take value '30'")
    expect((err as unknown as { context: Record<string, unknown> }).context.qmpClass).toBe('GenericError')
    h.peer.assertDone()
    expect(h.ctx.fdsets.has('drive-0')).toBe(false)
  })

  it('rollback blockdev-del failing → warning only; error is still the device_add one; fdsets kept', async () => {
    h = await fakeHarness()
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', error: { class: 'GenericError', desc: "Bus 'scsi0.0' not found" } })
      .expect({ execute: 'blockdev-del', error: { class: 'GenericError', desc: 'Node drive-3 is in use' } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-scsi', index: 3 })).rejects.toThrow(/^device_add QMP device_add: GenericError: Bus 'scsi0.0' not found$/)
    h.peer.assertDone()
    expect(h.ctx.fdsets.get('drive-3')).toEqual([0])
  })

  it('duplicate node (tracked fdsets) → `duplicate QEMU block device ID drive-<i>`, zero QMP commands', async () => {
    h = await fakeHarness()
    h.ctx.fdsets.add('drive-4', 9)
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-scsi', index: 4 })).rejects.toThrow(/^duplicate QEMU block device ID drive-4$/)
    expect(h.peer.commands).toEqual(['qmp_capabilities'])
  })

  it('blockdev-add failure → remove-fd, `blockdev-add backend <err>`', async () => {
    h = await fakeHarness()
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add', error: { class: 'GenericError', desc: 'aio=native was specified, but it requires cache.direct=on' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 0 } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, aio: 'native', driver: 'virtio-scsi', index: 0 })).rejects.toThrow(/^blockdev-add backend QMP blockdev-add: GenericError: aio=native/)
    h.peer.assertDone()
  })

  it('source that is neither a file nor a block device (a char device) → fails naming the path, nothing sent', async () => {
    h = await fakeHarness()
    await expect(hotplugBlockDevice(h.ctx, { ...base, pathOnHost: '/dev/null', driver: 'virtio-scsi', index: 0 })).rejects.toThrow(`QEMU block source /dev/null is neither an allowed regular file nor block device`)
    expect(h.peer.commands).toEqual(['qmp_capabilities'])
  })

  it('VMDK: add-fd per extent then descriptor; failing add-fd removes fdsets collected so far', async () => {
    const e1 = tempFile(dir, 'e1.raw', 4096)
    const e2 = tempFile(dir, 'e2.raw', 4096)
    const vmdk = { extents: [{ pathOnHost: e1, sectors: 8, fileOffset: 0 }, { pathOnHost: e2, sectors: 8, fileOffset: 0 }] }
    h = await fakeHarness()
    const fdset = fdsetCounter()
    h.peer
      .expect({ execute: 'add-fd', args: { opaque: 'kata-block:drive-1:vmdk-extent-0' }, returns: fdset })
      .expect({ execute: 'add-fd', args: { opaque: 'kata-block:drive-1:vmdk-extent-1' }, returns: fdset })
      .expect({ execute: 'add-fd', args: { opaque: 'kata-block:drive-1:vmdk-descriptor' }, returns: fdset })
      .expect({
        execute: 'blockdev-add',
        args: (a) => a?.driver === 'vmdk' && a['force-share'] === true && (a.file as { filename: string }).filename === '/dev/fdset/2',
      })
      .expect({ execute: 'device_add' })
      .expect({ execute: 'add-fd', args: { opaque: 'kata-block:drive-2:vmdk-extent-0' }, returns: fdset })
      .expect({ execute: 'add-fd', error: { class: 'GenericError', desc: 'no fd' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 3 } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, vmdk, driver: 'virtio-scsi', index: 1 })).resolves.toEqual({ scsiAddr: '0:1' })
    await expect(hotplugBlockDevice(h.ctx, { ...base, vmdk, driver: 'virtio-scsi', index: 2 })).rejects.toThrow(/no fd/)
    h.peer.assertDone()
    expect(h.ctx.fdsets.get('drive-1')).toEqual([0, 1, 2])
    expect(h.ctx.fdsets.has('drive-2')).toBe(false)
  })
})

describe('virtio-blk-ccw (spec §3 step 5, §14 row 32; s390x: scripted peer only)', () => {
  it('success: devno fe.0.0000, share-rw, no bus; returns guest address 0.0.0000', async () => {
    h = await fakeHarness({ ccw: new CcwSubchannel(0) })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', args: { driver: 'virtio-blk-ccw', drive: 'drive-0', id: 'drive-0', devno: 'fe.0.0000', 'share-rw': true } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-ccw', index: 0 })).resolves.toEqual({ ccwAddr: '0.0.0000' })
    h.peer.assertDone()
    expect(h.ctx.ccw!.slotOf('drive-0')).toBe(0)
  })

  it('no subchannel → blockdev-del, remove-fd, `CCW subchannel not available for virtio-blk-ccw hotplug`', async () => {
    h = await fakeHarness()
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'blockdev-del', args: { 'node-name': 'drive-0' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 0 } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-ccw', index: 0 })).rejects.toThrow(/^CCW subchannel not available for virtio-blk-ccw hotplug$/)
    h.peer.assertDone()
  })

  it('upstream-gap-12.4: no subchannel and the cleanup blockdev-del fails → its error replaces the message', async () => {
    h = await fakeHarness()
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'blockdev-del', error: { class: 'GenericError', desc: 'Node drive-0 is in use' } })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-ccw', index: 0 })).rejects.toThrow(/^QMP blockdev-del: GenericError: Node drive-0 is in use$/)
    h.peer.assertDone()
  })

  it('duplicate id in the subchannel → blockdev-del, remove-fd, `CCW subchannel add_device failed: …`', async () => {
    const ccw = new CcwSubchannel(0)
    ccw.addDevice('drive-0')
    h = await fakeHarness({ ccw })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'blockdev-del' })
      .expect({ execute: 'remove-fd' })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-ccw', index: 0 })).rejects.toThrow(/^CCW subchannel add_device failed: device drive-0 already exists/)
    h.peer.assertDone()
  })

  it('device_add failure → blockdev-del rollback, then the CCW slot is released (counter does not go back)', async () => {
    h = await fakeHarness({ ccw: new CcwSubchannel(0) })
    h.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', args: (a) => a?.devno === 'fe.0.0000', error: { class: 'GenericError', desc: 'devno in use' } })
      .expect({ execute: 'blockdev-del' })
      .expect({ execute: 'remove-fd' })
    await expect(hotplugBlockDevice(h.ctx, { ...base, driver: 'virtio-blk-ccw', index: 0 })).rejects.toThrow(/^device_add /)
    h.peer.assertDone()
    expect(h.ctx.ccw!.has('drive-0')).toBe(false)
    expect(h.ctx.ccw!.addDevice('drive-9')).toBe(1)
  })
})

describe('naming helpers (spec §2)', () => {
  it('SCSI address from index', () => {
    expect(scsiAddressOf(3)).toEqual({ scsiId: 0, lun: 3, address: '0:3' })
    expect(scsiAddressOf(258)).toEqual({ scsiId: 1, lun: 2, address: '1:2' })
    expect(() => scsiAddressOf(65536)).toThrow()
  })
  it('CCW devno and guest address', () => {
    const c = new CcwSubchannel(0)
    expect(c.devno(5)).toBe('fe.0.0005')
    expect(c.guestAddress(5)).toBe('0.0.0005')
  })
})
