import { describe, expect, it } from 'vitest'
import { PciBridgeSlots, findFreeSlotInQueryPci, formatPciAddr, pciPathOf, type QueryPciBus } from './pci-slots.ts'
import { CcwSubchannel } from './ccw-subchannel.ts'

describe('PciBridgeSlots (spec §4)', () => {
  it('visits bridges in numeric suffix order, slots 1..30, first free wins', () => {
    const s = new PciBridgeSlots(0)
    s.record('pci-bridge-10', 1, 'a')
    s.record('pci-bridge-2', 1, 'b')
    expect(s.bridgeIds()).toEqual(['pci-bridge-2', 'pci-bridge-10'])
    expect(s.findFree()).toEqual({ bridgeId: 'pci-bridge-2', slot: 2 })
    for (let slot = 1; slot <= 30; slot++) s.record('pci-bridge-2', slot, `x${slot}`)
    expect(s.findFree()).toEqual({ bridgeId: 'pci-bridge-10', slot: 2 })
  })

  it('a full map has no free slot; release frees exactly the device slot (gap §12.2 fix)', () => {
    const s = new PciBridgeSlots(1)
    for (let slot = 1; slot <= 30; slot++) s.record('pci-bridge-0', slot, `drive-${slot}`)
    expect(s.findFree()).toBeUndefined()
    expect(s.release('drive-7')).toEqual({ bridgeId: 'pci-bridge-0', slot: 7 })
    expect(s.findFree()).toEqual({ bridgeId: 'pci-bridge-0', slot: 7 })
    expect(s.release('nope')).toBeUndefined()
  })

  it('rejects a negative bridge count and out-of-range slots', () => {
    expect(() => new PciBridgeSlots(-1)).toThrow(/default_bridges/)
    expect(() => formatPciAddr(32)).toThrow(/PCI slot/)
  })
})

describe('query-pci walking (spec §1, §4)', () => {
  const info: QueryPciBus[] = [
    {
      bus: 0,
      devices: [
        { slot: 0, qdev_id: '' },
        {
          slot: 2,
          qdev_id: 'pci-bridge-0',
          pci_bridge: { devices: [{ slot: 1, qdev_id: 'drive-0' }, { slot: 16, qdev_id: 'drive-10' }] },
        },
        { slot: 3, qdev_id: 'rp', pci_bridge: { devices: [{ slot: 0, qdev_id: 'pci-bridge-1', pci_bridge: { devices: [] } }] } },
      ],
    },
  ]

  it('path = slots as two lowercase hex digits joined by /', () => {
    expect(pciPathOf(info, 'drive-0')).toBe('02/01')
    expect(pciPathOf(info, 'drive-10')).toBe('02/10')
    expect(pciPathOf(info, 'pci-bridge-1')).toBe('03/00')
    expect(() => pciPathOf(info, 'drive-99')).toThrow(/^no target device found$/)
  })

  it('fallback search finds pci-bridge-* devices at any depth, first unused slot', () => {
    expect(findFreeSlotInQueryPci(info)).toEqual({ bridgeId: 'pci-bridge-0', slot: 2 })
    const full: QueryPciBus[] = [
      { bus: 0, devices: [{ slot: 2, qdev_id: 'pci-bridge-0', pci_bridge: { devices: Array.from({ length: 30 }, (_, i) => ({ slot: i + 1 })) } }] },
    ]
    expect(findFreeSlotInQueryPci(full)).toBeUndefined()
  })
})

describe('CcwSubchannel (spec §2)', () => {
  it('slots from a counter that never goes back; duplicate and unknown ids fail', () => {
    const c = new CcwSubchannel(0)
    expect(c.addDevice('drive-0')).toBe(0)
    expect(c.addDevice('drive-1')).toBe(1)
    c.removeDevice('drive-0')
    expect(c.addDevice('drive-0')).toBe(2)
    expect(() => c.addDevice('drive-1')).toThrow(/already exists/)
    expect(() => c.removeDevice('drive-9')).toThrow(/not found/)
    expect(new CcwSubchannel(0x1f).devno(0x1a)).toBe('fe.1f.001a')
  })
})
