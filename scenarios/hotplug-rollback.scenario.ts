// Row 22 in a booted guest: a `device_add` made to fail (the bridge slot is taken by a device our
// slot tracker does not know about) is rolled back with `blockdev-del` of the same node: the node is
// gone from `query-named-block-nodes`, its fdset is removed, and the guest gets no new disk.
import { scenario, expect } from '../harness/scenario.ts'
import { hotplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'
import { guestDisks, namedNodes, openHotplug, test, virtioBlk, waitGuestDisk } from './_support/hotplug.ts'

scenario(
  {
    name: 'hotplug-rollback',
    upstream: 'kata-containers runtime-rs: QMP block hotplug with rollback (`device_add_with_rollback`, 431720025c)',
    requires: ['qemu'],
  },
  () => {
    test('device_add failing on an occupied slot → blockdev-del of drive-1 right after; no node, no fdset, no guest disk left', async ({ guest }) => {
      const s = await openHotplug(guest)
      try {
        // A disk plugged behind the tracker's back (plain QMP) at pci-bridge-0 slot 1.
        const other = s.disk('other.raw', 'KATAREF-OTHER')
        await s.qmp.execute('blockdev-add', { driver: 'raw', 'node-name': 'other', 'read-only': true, file: { driver: 'file', filename: other, 'read-only': true } })
        await s.qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'other-dev', drive: 'other', bus: 'pci-bridge-0', addr: '01' })
        const otherSeen = await waitGuestDisk(guest, '02/01', 'KATAREF-OTHER'.length)
        expect(otherSeen.head).toBe('KATAREF-OTHER')
        const disksBefore = await guestDisks(guest)
        const fdsetsBefore = await s.qmp.execute<unknown[]>('query-fdsets')
        expect(fdsetsBefore).toEqual([])
        const mark = s.record.length

        // The tracker believes slot 1 is free, so device_add asks for addr 01 and QEMU refuses.
        const path = s.disk('d1.raw', 'KATAREF-ROLLBACK')
        const err = await hotplugBlockDevice(s.ctx, virtioBlk(1, path)).then(
          () => new Error('expected device_add to fail'),
          (e: Error) => e,
        )
        expect(err.message).toMatch(/^device_add QMP device_add: GenericError: PCI: slot 1 function 0 not available for virtio-blk-pci, in use by virtio-blk-pci/)

        // Exchange: add-fd, blockdev-add, device_add (fails), blockdev-del of the same node at once, remove-fd.
        const sent = s.record.slice(mark).flatMap((r) => (r.dir === 'send' ? [[r.command, r.args] as const] : []))
        expect(sent.map(([c]) => c)).toEqual(['add-fd', 'blockdev-add', 'device_add', 'blockdev-del', 'remove-fd'])
        expect(sent[3]![1]).toEqual({ 'node-name': 'drive-1' })

        // query-named-block-nodes proves the node is gone; the fdset was removed; the tracker forgot it.
        const nodes = await namedNodes(s.qmp)
        expect(nodes).toContain('other')
        expect(nodes).not.toContain('drive-1')
        expect(await s.qmp.execute('query-fdsets')).toEqual([])
        expect(s.ctx.fdsets.has('drive-1')).toBe(false)
        expect(s.ctx.slots.find('drive-1')).toBeUndefined()

        // Witness: no new disk in the guest.
        expect(await guestDisks(guest)).toEqual(disksBefore)
      } finally {
        s.close()
      }
    })
  },
)
