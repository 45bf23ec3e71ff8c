// Rows 31 and 27 (slot reuse) in a booted guest, over many cycles on one bridge:
// - 40 plug/unplug cycles on pci-bridge-0 (up to 13 disks plugged at once, the oldest unplugged each
//   cycle) all succeed, each disk seen by the guest at the slot we wrote: slots 10–13 are written in
//   hex (`0a`…`0d`) and land there (gap §12.1 fixed), and freed slots are reused so 40 hotplugs fit
//   in a 30-slot bridge (gap §12.2 fixed; upstream fails with `no free slots on PCI bridges`).
// - the trigger of gap §12.1, shown with `pciAddrFormat: 'upstream-decimal'`: slot 10 written as
//   "10" lands at 0x10 (the guest sees the disk at slot 0x10 while the tracker recorded 10), and slot
//   20 written as "20" is refused by QEMU.
import { scenario, expect } from '../harness/scenario.ts'
import { hotplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'
import { hotunplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-unplug.ts'
import { PciBridgeSlots } from '../impl/runtime/hypervisor/qemu/hotplug/pci-slots.ts'
import { guestDisks, namedNodes, openHotplug, test, virtioBlk, waitGuestDisk, waitGuestDiskGone } from './_support/hotplug.ts'

const CYCLES = 40
const WINDOW = 12

scenario(
  {
    name: 'hotplug-many',
    upstream: 'kata-containers runtime-rs: PCI bridge slot search for block hotplug (qemu/qmp.rs find_free_slot, `addr` {slot:02}; 431720025c)',
    gap: {
      upstream: 'addr is written in decimal (slot 10 → "10" → QEMU slot 0x10; slot 20 → refused) and unplug never frees a slot, so ~30 cycles exhaust a bridge',
      kataref: 'addr is written in hex ("0a") and a slot is freed once DEVICE_DELETED arrived: 40 plug/unplug cycles on one bridge succeed',
    },
    requires: ['qemu'],
  },
  () => {
    test(`${CYCLES} plug/unplug cycles on pci-bridge-0: every disk at its slot in the guest, slots 0a–0d in hex, freed slots reused`, async ({ guest, annotate }) => {
      const s = await openHotplug(guest)
      const live: { index: number; slot: number; pciPath: string; name: string }[] = []
      const slotsUsed: number[] = []
      try {
        const unplugOldest = async (): Promise<void> => {
          const old = live.shift()!
          await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', old.index)
          await waitGuestDiskGone(guest, old.name, old.pciPath)
        }
        for (let index = 0; index < CYCLES; index++) {
          const marker = `KATAREF-MANY-${String(index).padStart(2, '0')}`
          const free = s.ctx.slots.findFree()!
          const res = await hotplugBlockDevice(s.ctx, virtioBlk(index, s.disk(`d${index}.raw`, marker)))
          const pciPath = (res as { pciPath: string }).pciPath
          // The slot QEMU reports is the slot we chose (hex on the wire), and the guest sees the disk there.
          expect(pciPath).toBe(`02/${free.slot.toString(16).padStart(2, '0')}`)
          const seen = await waitGuestDisk(guest, pciPath, marker.length)
          expect(seen.head).toBe(marker)
          live.push({ index, slot: free.slot, pciPath, name: seen.name })
          slotsUsed.push(free.slot)
          if (live.length > WINDOW) await unplugOldest()
        }
        while (live.length) await unplugOldest()
        await annotate(`slots taken by the ${CYCLES} hotplugs, in order: ${slotsUsed.map((x) => x.toString(16).padStart(2, '0')).join(' ')}`)
        expect(Math.max(...slotsUsed)).toBe(WINDOW + 1)
        expect(slotsUsed.filter((x) => x >= 10).length).toBeGreaterThan(0)
        expect(await guestDisks(guest)).toEqual(['vda'])
        expect((await namedNodes(s.qmp)).filter((n) => n.startsWith('drive-'))).toEqual([])
        expect(s.ctx.slots.slotsOf('pci-bridge-0').size).toBe(0)
      } finally {
        s.close()
      }
    })

    test('upstream-gap-12.1 trigger: slot 10 written in decimal ("10") lands at 0x10 in QEMU and in the guest; "20" is refused', async ({ guest }) => {
      const s = await openHotplug(guest, { pciAddrFormat: 'upstream-decimal' })
      try {
        // A tracker whose slots 1–9 are taken, so the next free one is 10.
        const slots = new PciBridgeSlots(1)
        for (let n = 1; n <= 9; n++) slots.record('pci-bridge-0', n, `placeholder-${n}`)
        s.ctx.slots = slots
        const res = await hotplugBlockDevice(s.ctx, virtioBlk(50, s.disk('d50.raw', 'KATAREF-DECIMAL')))
        const add = s.record.filter((r) => r.dir === 'send' && r.command === 'device_add').at(-1)
        expect(add?.dir === 'send' ? add.args : undefined).toMatchObject({ bus: 'pci-bridge-0', addr: '10' })
        // The tracker believes slot 10; QEMU put it at 0x10 = 16, which the returned path (hex) shows.
        expect(slots.find('drive-50')).toEqual({ bridgeId: 'pci-bridge-0', slot: 10 })
        expect(res).toEqual({ pciPath: '02/10' })
        const seen = await waitGuestDisk(guest, '02/10', 'KATAREF-DECIMAL'.length)
        expect(seen.head).toBe('KATAREF-DECIMAL')
        const at0a = await guest.debug.run('ls -d /sys/bus/pci/devices/0000:00:02.0/0000:*:0a.0 2>/dev/null || echo none')
        expect(at0a.stdout.trim()).toBe('none')

        // Slots 11..19 taken too: the next is 20, written "20" = 0x20 = 32, out of range.
        for (let n = 11; n <= 19; n++) slots.record('pci-bridge-0', n, `placeholder-${n}`)
        const err = await hotplugBlockDevice(s.ctx, virtioBlk(51, s.disk('d51.raw', 'KATAREF-DECIMAL-20'))).then(
          () => new Error('expected device_add to fail'),
          (e: Error) => e,
        )
        expect(err.message).toMatch(/^device_add .*doesn't take value '20'/)
        expect(await namedNodes(s.qmp)).not.toContain('drive-51')

        await hotunplugBlockDevice(s.ctx, 'virtio-blk-pci', 50)
        await waitGuestDiskGone(guest, seen.name, '02/10')
      } finally {
        s.close()
      }
    })
  },
)
