// Row 27 in a booted guest: hot-unplug of a virtio-blk-pci disk on pci-bridge-0. The guest ejects it
// (ACPI PCI hotplug), QEMU emits DEVICE_DELETED for `drive-0`, and only then is `blockdev-del` sent;
// the disk leaves the guest and QEMU. The recorded QMP exchange shows the order.
import { scenario, expect } from '../harness/scenario.ts'
import { hotplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'
import { hotunplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-unplug.ts'
import type { QueryPciBus } from '../impl/runtime/hypervisor/qemu/hotplug/pci-slots.ts'
import { pciPathOf } from '../impl/runtime/hypervisor/qemu/hotplug/pci-slots.ts'
import { guestDisks, namedNodes, openHotplug, test, virtioBlk, waitGuestDisk, waitGuestDiskGone, type QmpRecord } from './_support/hotplug.ts'

function describeRecord(r: QmpRecord): string {
  return r.dir === 'send' ? `→ ${r.command}${r.args && 'id' in r.args && !('driver' in r.args) ? ` ${String(r.args.id)}` : ''}${r.args?.['node-name'] ? ` ${String(r.args['node-name'])}` : ''}` : `← ${r.event}${r.data?.device ? ` ${String(r.data.device)}` : ` ${String(r.data?.path ?? '')}`}`
}

scenario(
  {
    name: 'hotunplug-block',
    upstream: 'kata-containers runtime-rs: QMP block hot-unplug (`hotunplug_block_device` + `wait_for_device_deleted`, 281b6aa61a; dispatcher d4212bcb74; `remove_device` 0a63aebea9)',
    gap: {
      upstream: 'hot-unplug never frees the bridge slot (the next hotplug takes 02/02; ~30 cycles exhaust a bridge); the DEVICE_DELETED wait polls query-version every 100 ms and discards other events',
      kataref: 'the slot is freed once DEVICE_DELETED for the id arrived (the next hotplug reuses 02/01); the wait is event-driven and leaves other events queued',
    },
    requires: ['qemu'],
  },
  () => {
    test('the disk leaves the guest; blockdev-del drive-0 is sent only after DEVICE_DELETED for drive-0', async ({ guest, annotate }) => {
      const s = await openHotplug(guest)
      try {
        const res = await hotplugBlockDevice(s.ctx, virtioBlk(0, s.disk('d0.raw', 'KATAREF-UNPLUG-0')))
        expect(res).toEqual({ pciPath: '02/01' })
        const seen = await waitGuestDisk(guest, '02/01', 'KATAREF-UNPLUG-0'.length)
        expect(seen.head).toBe('KATAREF-UNPLUG-0')
        expect(await namedNodes(s.qmp)).toContain('drive-0')
        const mark = s.record.length

        const t0 = performance.now()
        await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', 0)
        const unplugMs = performance.now() - t0

        const exchange = s.record.slice(mark)
        await annotate(`QMP exchange of the unplug (${unplugMs.toFixed(0)} ms):\n${exchange.map(describeRecord).join('\n')}`)
        const at = (pred: (r: QmpRecord) => boolean): number => exchange.findIndex(pred)
        const iDel = at((r) => r.dir === 'send' && r.command === 'device_del')
        const iEvent = at((r) => r.dir === 'event' && r.event === 'DEVICE_DELETED' && r.data?.device === 'drive-0')
        const iBlockdevDel = at((r) => r.dir === 'send' && r.command === 'blockdev-del')
        const iRemoveFd = at((r) => r.dir === 'send' && r.command === 'remove-fd')
        expect(iDel).toBe(0)
        expect(exchange[0]).toEqual({ dir: 'send', command: 'device_del', args: { id: 'drive-0' } })
        expect(iEvent).toBeGreaterThan(iDel)
        expect(iBlockdevDel).toBeGreaterThan(iEvent)
        expect(exchange[iBlockdevDel]).toEqual({ dir: 'send', command: 'blockdev-del', args: { 'node-name': 'drive-0' } })
        expect(iRemoveFd).toBeGreaterThan(iBlockdevDel)
        // No command other than device_del went out before the event (event-driven wait: no query-version polls).
        expect(exchange.slice(0, iEvent).filter((r) => r.dir === 'send').map((r) => (r.dir === 'send' ? r.command : ''))).toEqual(['device_del'])

        // Gone from QEMU…
        expect(await namedNodes(s.qmp)).not.toContain('drive-0')
        const pci = await s.qmp.execute<QueryPciBus[]>('query-pci')
        expect(() => pciPathOf(pci, 'drive-0')).toThrow(/no target device found/)
        expect(await s.qmp.execute('query-fdsets')).toEqual([])
        // …and from the guest (witness).
        await waitGuestDiskGone(guest, seen.name, '02/01')
        expect(await guestDisks(guest)).toEqual(['vda'])

        // Gap §12.2 fixed: the slot is free again, the next disk takes 02/01 (upstream would take 02/02).
        const again = await hotplugBlockDevice(s.ctx, virtioBlk(1, s.disk('d1.raw', 'KATAREF-UNPLUG-1')))
        expect(again).toEqual({ pciPath: '02/01' })
        expect((await waitGuestDisk(guest, '02/01', 'KATAREF-UNPLUG-1'.length)).head).toBe('KATAREF-UNPLUG-1')
      } finally {
        s.close()
      }
    })

    test('upstream-gap-12.2 reproduced (releaseSlotOnUnplug: false): after an unplug the next hotplug does not reuse the slot', async ({ guest }) => {
      const s = await openHotplug(guest, { releaseSlotOnUnplug: false })
      try {
        // drive-1 from the previous test still sits at 02/01.
        s.ctx.slots.record('pci-bridge-0', 1, 'drive-1')
        expect(await hotplugBlockDevice(s.ctx, virtioBlk(2, s.disk('d2.raw', 'KATAREF-UNPLUG-2')))).toEqual({ pciPath: '02/02' })
        const d2 = await waitGuestDisk(guest, '02/02', 'KATAREF-UNPLUG-2'.length)
        await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', 2)
        await waitGuestDiskGone(guest, d2.name, '02/02')
        expect(s.ctx.slots.find('drive-2')).toEqual({ bridgeId: 'pci-bridge-0', slot: 2 })
        // QEMU has room at slot 2 again, but the upstream tracker moves on to 3.
        expect(await hotplugBlockDevice(s.ctx, virtioBlk(3, s.disk('d3.raw', 'KATAREF-UNPLUG-3')))).toEqual({ pciPath: '02/03' })
        const d3 = await waitGuestDisk(guest, '02/03', 'KATAREF-UNPLUG-3'.length)
        await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', 3)
        await waitGuestDiskGone(guest, d3.name, '02/03')
      } finally {
        s.close()
      }
    })

    test('an unknown id: device_del error carrying DeviceNotFound, no wait, no blockdev-del (row 28)', async ({ guest }) => {
      const s = await openHotplug(guest)
      try {
        const mark = s.record.length
        const err = await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', 9).then(
          () => new Error('expected a failure'),
          (e: Error) => e,
        )
        expect(err.message).toBe("device_del for block device drive-9: QMP device_del: DeviceNotFound: Device 'drive-9' not found")
        expect(s.record.slice(mark).flatMap((r) => (r.dir === 'send' ? [r.command] : []))).toEqual(['device_del'])
      } finally {
        s.close()
      }
    })
  },
)
