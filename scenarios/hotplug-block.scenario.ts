// Row 21 in a booted guest: a raw disk hot-added with our QMP hotplug code (virtio-blk-pci on the
// runtime-rs bridge `pci-bridge-0`) shows up in the guest at the PCI path the code reported.
import { scenario, expect } from '../harness/scenario.ts'
import { hotplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'
import { guestDisks, namedNodes, openHotplug, test, virtioBlk, waitGuestDisk } from './_support/hotplug.ts'

scenario(
  {
    name: 'hotplug-block',
    upstream: 'kata-containers runtime-rs: QMP block hotplug with rollback (`device_add_with_rollback`, 431720025c; qemu/qmp.rs hotplug_block_device)',
    requires: ['qemu'],
  },
  () => {
    test('two raw disks hot-added on pci-bridge-0 appear in the guest at the reported PCI paths 02/01 and 02/02', async ({ guest }) => {
      const s = await openHotplug(guest)
      try {
        const before = await guestDisks(guest)
        expect(before).toEqual(['vda'])
        const results: { pciPath: string; name: string }[] = []
        for (const index of [0, 1]) {
          const marker = `KATAREF-HOTPLUG-${index}`
          const path = s.disk(`d${index}.raw`, marker)
          const res = await hotplugBlockDevice(s.ctx, virtioBlk(index, path))
          expect(res).toEqual({ pciPath: `02/0${index + 1}` })
          const pciPath = (res as { pciPath: string }).pciPath
          // Witness: the PCI function under the bridge at 00:02.0, slot from the reported path, carries a
          // virtio block disk whose first bytes are the marker written on the host.
          const seen = await waitGuestDisk(guest, pciPath, marker.length)
          expect(seen.head).toBe(marker)
          expect(seen.pciDir).toMatch(new RegExp(`^/sys/bus/pci/devices/0000:00:02\\.0/0000:[0-9a-f]{2}:0${index + 1}\\.0$`))
          results.push({ pciPath, name: seen.name })
        }
        expect(await guestDisks(guest)).toEqual(['vda', ...results.map((r) => r.name)].sort())
        // The exchange for the first disk: add-fd (fd passing), blockdev-add, device_add on the bridge with addr 01, query-pci.
        const sent = s.record.filter((r) => r.dir === 'send').map((r) => (r.dir === 'send' ? r.command : ''))
        expect(sent.slice(0, 6)).toEqual(['qmp_capabilities', 'query-fdsets', 'add-fd', 'blockdev-add', 'device_add', 'query-pci'])
        const adds = s.record.filter((r) => r.dir === 'send' && r.command === 'device_add').map((r) => (r.dir === 'send' ? r.args : undefined))
        expect(adds).toMatchObject([
          { driver: 'virtio-blk-pci', id: 'drive-0', drive: 'drive-0', bus: 'pci-bridge-0', addr: '01', 'share-rw': true },
          { driver: 'virtio-blk-pci', id: 'drive-1', drive: 'drive-1', bus: 'pci-bridge-0', addr: '02', 'share-rw': true },
        ])
        expect(await namedNodes(s.qmp)).toEqual(expect.arrayContaining(['drive-0', 'drive-1']))
      } finally {
        s.close()
      }
    })
  },
)
