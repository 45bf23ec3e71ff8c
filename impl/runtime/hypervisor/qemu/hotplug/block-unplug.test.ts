import { afterEach, describe, expect, it, vi } from 'vitest'
import { DeadlineError } from '../../../../types/errors.ts'
import { hotplugBlockDevice } from './block-hotplug.ts'
import { hotunplugBlockDevice, waitForDeviceDeleted } from './block-unplug.ts'
import { CcwSubchannel } from './ccw-subchannel.ts'
import { fakeHarness, fdsetCounter, queryPciWithBridges, tempDir, tempFile, type Harness } from './test-support.ts'
import type { QmpEvent } from '../qmp/qmp-types.ts'

const disk = tempFile(tempDir(), 'disk.raw')
let h: Harness | undefined
afterEach(() => {
  vi.useRealTimers()
  h?.close()
  h = undefined
})

const backendEvent = (id: string): QmpEvent => ({ event: 'DEVICE_DELETED', data: { path: `/machine/peripheral/${id}/virtio-backend` } })
const deletedEvent = (id: string): QmpEvent => ({ event: 'DEVICE_DELETED', data: { device: id, path: `/machine/peripheral/${id}` } })

describe('hotunplugBlockDevice (spec §5, §14 rows 25, 28, 29)', () => {
  it('virtio-scsi drive-3: device_del → DEVICE_DELETED(drive-3) → blockdev-del → remove-fd per fdset, in order', async () => {
    h = await fakeHarness()
    h.ctx.fdsets.add('drive-3', 4)
    h.ctx.fdsets.add('drive-3', 5)
    h.peer
      .expect({ execute: 'device_del', args: { id: 'drive-3' }, events: [{ event: deletedEvent('drive-3'), delayMs: 20 }] })
      .expect({ execute: 'blockdev-del', args: { 'node-name': 'drive-3' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 4 } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 5 } })
    await hotunplugBlockDevice(h.ctx, 'virtio-scsi', 3)
    h.peer.assertDone()
    expect(h.ctx.fdsets.has('drive-3')).toBe(false)
    // blockdev-del was sent only after the DEVICE_DELETED for drive-3 arrived
    expect(h.peer.received[2]!.at).toBeGreaterThanOrEqual(h.peer.emitted[0]!.at)
  })

  it('the …/virtio-backend event and a DEVICE_DELETED for another id do not end the wait; they stay queued', async () => {
    h = await fakeHarness()
    h.peer
      .expect({
        execute: 'device_del',
        args: { id: 'drive-3' },
        events: [
          { event: backendEvent('drive-3') },
          { event: deletedEvent('drive-7'), delayMs: 10 },
          { event: deletedEvent('drive-3'), delayMs: 30 },
        ],
      })
      .expect({ execute: 'blockdev-del', args: { 'node-name': 'drive-3' } })
    await hotunplugBlockDevice(h.ctx, 'virtio-scsi', 3)
    h.peer.assertDone()
    const blockdevDelAt = h.peer.received[2]!.at
    expect(blockdevDelAt).toBeGreaterThanOrEqual(h.peer.emitted[2]!.at)
    expect(h.qmp.pendingEvents()).toEqual([backendEvent('drive-3'), deletedEvent('drive-7')])
  })

  it('unknown id → `device_del for block device drive-9: …DeviceNotFound…`; no wait, no blockdev-del', async () => {
    h = await fakeHarness()
    h.peer.expect({ execute: 'device_del', args: { id: 'drive-9' }, error: { class: 'DeviceNotFound', desc: "Device 'drive-9' not found" } })
    const err = await hotunplugBlockDevice(h.ctx, 'virtio-scsi', 9).then(() => new Error('expected a failure'), (e: Error) => e)
    expect(err.message).toBe("device_del for block device drive-9: QMP device_del: DeviceNotFound: Device 'drive-9' not found")
    expect((err as unknown as { context: Record<string, unknown> }).context.qmpClass).toBe('DeviceNotFound')
    h.peer.assertDone()
    expect(h.peer.commands).toEqual(['qmp_capabilities', 'device_del'])
  })

  it('no DEVICE_DELETED within 10 s → upstream text, blockdev-del never sent (fake timers)', async () => {
    h = await fakeHarness()
    h.peer.expect({ execute: 'device_del', events: [{ event: backendEvent('drive-0') }] })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const p = hotunplugBlockDevice(h.ctx, 'virtio-blk-pci', 0).then(() => new Error('expected a failure'), (e: Error) => e)
    await vi.advanceTimersByTimeAsync(9_999)
    expect(h.peer.commands).toEqual(['qmp_capabilities', 'device_del'])
    await vi.advanceTimersByTimeAsync(2)
    const err = await p
    expect(err.message).toMatch(
      /^hotunplug_block_device\(\): waiting for DEVICE_DELETED: timed out \(10s\) waiting for DEVICE_DELETED event for drive-0: deadline of 10000 ms exceeded$/,
    )
    expect(err.cause).toBeInstanceOf(DeadlineError)
    h.peer.assertDone()
    expect(h.peer.commands).not.toContain('blockdev-del')
  })

  it('blockdev-del failure → `blockdev_del for block device drive-3: …`; fdsets kept', async () => {
    h = await fakeHarness()
    h.ctx.fdsets.add('drive-3', 1)
    h.peer
      .expect({ execute: 'device_del', events: [{ event: deletedEvent('drive-3') }] })
      .expect({ execute: 'blockdev-del', error: { class: 'GenericError', desc: 'Node drive-3 is in use' } })
    await expect(hotunplugBlockDevice(h.ctx, 'virtio-scsi', 3)).rejects.toThrow(
      /^blockdev_del for block device drive-3: QMP blockdev-del: GenericError: Node drive-3 is in use$/,
    )
    h.peer.assertDone()
    expect(h.ctx.fdsets.get('drive-3')).toEqual([1])
  })

  it('remove-fd failure is only warned; the id is kept and unplug succeeds', async () => {
    h = await fakeHarness()
    h.ctx.fdsets.add('drive-3', 1)
    h.ctx.fdsets.add('drive-3', 2)
    h.peer
      .expect({ execute: 'device_del', events: [{ event: deletedEvent('drive-3') }] })
      .expect({ execute: 'blockdev-del' })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 1 }, error: { class: 'GenericError', desc: 'File descriptor named ... not found' } })
      .expect({ execute: 'remove-fd', args: { 'fdset-id': 2 } })
    await hotunplugBlockDevice(h.ctx, 'virtio-scsi', 3)
    h.peer.assertDone()
    expect(h.ctx.fdsets.get('drive-3')).toEqual([1])
  })

  it('waitForDeviceDeleted formats a non-round deadline as ms', async () => {
    h = await fakeHarness()
    await expect(waitForDeviceDeleted(h.qmp, 'drive-1', 30)).rejects.toThrow(/^timed out \(30ms\) waiting for DEVICE_DELETED event for drive-1/)
  })
})

describe('CCW slot release on every unplug path (spec §5 step 5, §14 row 32)', () => {
  const ccwHarness = async (): Promise<Harness> => {
    const ccw = new CcwSubchannel(0)
    ccw.addDevice('drive-0')
    return fakeHarness({ ccw })
  }

  it('success releases the slot', async () => {
    h = await ccwHarness()
    h.peer.expect({ execute: 'device_del', events: [{ event: deletedEvent('drive-0') }] }).expect({ execute: 'blockdev-del' })
    await hotunplugBlockDevice(h.ctx, 'virtio-blk-ccw', 0)
    h.peer.assertDone()
    expect(h.ctx.ccw!.has('drive-0')).toBe(false)
  })

  it('upstream-gap-12.5: device_del failure still releases the slot', async () => {
    h = await ccwHarness()
    h.peer.expect({ execute: 'device_del', error: { class: 'GenericError', desc: 'busy' } })
    await expect(hotunplugBlockDevice(h.ctx, 'virtio-blk-ccw', 0)).rejects.toThrow(/^device_del for block device drive-0: /)
    expect(h.ctx.ccw!.has('drive-0')).toBe(false)
  })

  it('timeout and blockdev-del failure release the slot; an unknown id is ignored', async () => {
    h = await ccwHarness()
    h.ctx.deviceDeletedTimeoutMs = 20
    h.peer
      .expect({ execute: 'device_del' })
      .expect({ execute: 'device_del', events: [{ event: deletedEvent('drive-1') }] })
      .expect({ execute: 'blockdev-del', error: { class: 'GenericError', desc: 'in use' } })
    await expect(hotunplugBlockDevice(h.ctx, 'virtio-blk-ccw', 0)).rejects.toThrow(/waiting for DEVICE_DELETED/)
    expect(h.ctx.ccw!.has('drive-0')).toBe(false)
    await expect(hotunplugBlockDevice(h.ctx, 'virtio-blk-ccw', 1)).rejects.toThrow(/^blockdev_del for block device drive-1/)
    h.peer.assertDone()
  })
})

describe('upstream-gap-12.2: the bridge slot is freed on unplug', () => {
  async function plugPci(hh: Harness, index: number, slot: number): Promise<void> {
    hh.peer
      .expect({ execute: 'add-fd', returns: fdsetCounter() })
      .expect({ execute: 'blockdev-add' })
      .expect({ execute: 'device_add', args: (a) => a?.addr === slot.toString(16).padStart(2, '0') })
      .expect({ execute: 'query-pci', returns: queryPciWithBridges([[{ slot, qdevId: `drive-${index}` }]]) })
    await hotplugBlockDevice(hh.ctx, { driver: 'virtio-blk-pci', index, pathOnHost: disk, readOnly: false, noDrop: false, direct: false })
  }
  async function unplug(hh: Harness, index: number): Promise<void> {
    hh.peer
      .expect({ execute: 'device_del', events: [{ event: deletedEvent(`drive-${index}`) }] })
      .expect({ execute: 'blockdev-del' })
      .expect({ execute: 'remove-fd' })
    await hotunplugBlockDevice(hh.ctx, 'virtio-blk-pci', index)
  }

  it('40 plug/unplug cycles on one bridge all get slot 1 (upstream runs out after 30)', async () => {
    h = await fakeHarness({ bridges: 1 })
    for (let i = 0; i < 40; i++) {
      await plugPci(h, i, 1)
      await unplug(h, i)
    }
    h.peer.assertDone()
    expect(h.ctx.slots.slotsOf('pci-bridge-0').size).toBe(0)
  })

  it('the slot is kept when the device did not go away (timeout), and with releaseSlotOnUnplug=false (upstream)', async () => {
    h = await fakeHarness({ bridges: 1, deviceDeletedTimeoutMs: 20 })
    await plugPci(h, 0, 1)
    h.peer.expect({ execute: 'device_del' })
    await expect(hotunplugBlockDevice(h.ctx, 'virtio-blk-pci', 0)).rejects.toThrow(/timed out/)
    expect(h.ctx.slots.find('drive-0')).toEqual({ bridgeId: 'pci-bridge-0', slot: 1 })
    h.close()

    h = await fakeHarness({ bridges: 1, releaseSlotOnUnplug: false })
    await plugPci(h, 0, 1)
    await unplug(h, 0)
    await plugPci(h, 1, 2)
    h.peer.assertDone()
  })
})
