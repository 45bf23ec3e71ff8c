// Row 26 with a booted but stopped guest: a guest that cannot eject (vCPUs stopped with QMP `stop`)
// never lets QEMU emit DEVICE_DELETED, so the unplug ends with the deadline error, `blockdev-del` is
// never sent and the node (and the bridge slot) stay as they were. A 2 s deadline stands in for the
// 10 s default (BlockHotplugContext.deviceDeletedTimeoutMs). After `cont` the guest ejects, the late
// DEVICE_DELETED is still there for the runtime, and the node can then be deleted cleanly.
import { scenario, expect } from '../harness/scenario.ts'
import { hotplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'
import { hotunplugBlockDevice, waitForDeviceDeleted } from '../impl/runtime/hypervisor/qemu/hotplug/block-unplug.ts'
import { pciPathOf, type QueryPciBus } from '../impl/runtime/hypervisor/qemu/hotplug/pci-slots.ts'
import { guestDisks, namedNodes, openHotplug, test, virtioBlk, waitGuestDisk, waitGuestDiskGone } from './_support/hotplug.ts'

const DEADLINE_MS = 2000

scenario(
  {
    name: 'hotunplug-timeout',
    upstream: 'kata-containers runtime-rs: `wait_for_device_deleted` 10 s deadline in `hotunplug_block_device` (281b6aa61a)',
    requires: ['qemu'],
  },
  () => {
    test('stopped guest: deadline error, no blockdev-del, node and device still there; after cont the late DEVICE_DELETED lets the node go', async ({ guest }) => {
      const s = await openHotplug(guest, { deviceDeletedTimeoutMs: DEADLINE_MS })
      let stopped = false
      try {
        const res = await hotplugBlockDevice(s.ctx, virtioBlk(0, s.disk('d0.raw', 'KATAREF-TIMEOUT')))
        expect(res).toEqual({ pciPath: '02/01' })
        const seen = await waitGuestDisk(guest, '02/01', 'KATAREF-TIMEOUT'.length)

        await s.qmp.execute('stop')
        stopped = true
        expect(await s.qmp.execute('query-status')).toMatchObject({ running: false, status: 'paused' })
        const mark = s.record.length
        const t0 = performance.now()
        const err = await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', 0).then(
          () => new Error('expected the DEVICE_DELETED wait to time out'),
          (e: Error) => e,
        )
        const waited = performance.now() - t0
        expect(err.message).toMatch(/^hotunplug_block_device\(\): waiting for DEVICE_DELETED: /)
        expect(err.message).toContain('timed out (2s) waiting for DEVICE_DELETED event for drive-0')
        expect(waited).toBeGreaterThanOrEqual(DEADLINE_MS - 50)
        const sent = s.record.slice(mark).flatMap((r) => (r.dir === 'send' ? [r.command] : []))
        expect(sent).toEqual(['device_del'])
        expect(sent).not.toContain('blockdev-del')

        // Consistent: the node, its fdset and the device are all still there; the tracker keeps the slot.
        expect(await namedNodes(s.qmp)).toContain('drive-0')
        expect(pciPathOf(await s.qmp.execute<QueryPciBus[]>('query-pci'), 'drive-0')).toBe('02/01')
        expect((await s.qmp.execute<{ fds: { opaque?: string }[] }[]>('query-fdsets')).flatMap((f) => f.fds.map((x) => x.opaque))).toEqual(['kata-block:drive-0:block-source'])
        expect(s.ctx.fdsets.has('drive-0')).toBe(true)
        expect(s.ctx.slots.find('drive-0')).toEqual({ bridgeId: 'pci-bridge-0', slot: 1 })

        // The guest runs again, handles the pending eject; the late DEVICE_DELETED is delivered.
        await s.qmp.execute('cont')
        stopped = false
        await waitForDeviceDeleted(s.qmp, 'drive-0', 60_000)
        await s.qmp.execute('blockdev-del', { 'node-name': 'drive-0' })
        await s.ctx.fdsets.removeAll(s.qmp, 'drive-0')
        s.ctx.slots.release('drive-0')
        expect(await namedNodes(s.qmp)).not.toContain('drive-0')
        expect(await s.qmp.execute('query-fdsets')).toEqual([])
        await waitGuestDiskGone(guest, seen.name, '02/01')
        expect(await guestDisks(guest)).toEqual(['vda'])
      } finally {
        if (stopped) await s.qmp.execute('cont').catch(() => undefined)
        s.close()
      }
    })
  },
)
