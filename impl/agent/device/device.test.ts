import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { addDevices, deviceInfo, validateDevice, type DeviceLike } from './device.ts'
import { blkPciMatcher, mmioBlkMatcher, netPciMatcher, pciDeviceMatcher, pmemMatcher, scsiMatcher, vfioMatcher, type Uevent } from './matchers.ts'
import { deviceTreeToPciPath, formatPciAddress, parsePciAddress, parsePciPath, pcipathToSysfs, rootBusPath } from './pci.ts'
import { formatDuration, hotplugTimeoutFromCmdline, parseUevent, SysfsUeventSource, UeventStore } from './uevent.ts'

const ev = (o: Partial<Uevent>): Uevent => ({ action: 'add', devpath: '', subsystem: 'block', devname: 'vda', seqnum: '1', interface: '', ...o })

describe('matchers (spec §3, 736e07d18e)', () => {
  const rb = rootBusPath('00', 'x64')
  test('#16 blk PCI whole disk matches for any virtio index', () => {
    const m = blkPciMatcher(rb, '/0000:00:0a.0')
    for (const n of [4, 0, 99]) expect(m.matches(ev({ devpath: `/devices/pci0000:00/0000:00:0a.0/virtio${n}/block/vda` }))).toBe(true)
  })
  test('#17 blk PCI rejects partitions, missing virtioN, other subsystems, empty devname, deeper paths', () => {
    const m = blkPciMatcher(rb, '/0000:00:0a.0')
    const base = '/devices/pci0000:00/0000:00:0a.0/virtio4/block/vda'
    expect(m.matches(ev({ devpath: `${base}/vda1`, devname: 'vda1' }))).toBe(false)
    expect(m.matches(ev({ devpath: '/devices/pci0000:00/0000:00:0a.0/block/vda' }))).toBe(false)
    expect(m.matches(ev({ devpath: base, subsystem: 'net' }))).toBe(false)
    expect(m.matches(ev({ devpath: base, devname: '' }))).toBe(false)
    expect(m.matches(ev({ devpath: '/devices/pci0000:00/0000:00:0a.0/0000:01:01.0/virtio4/block/vda' }))).toBe(false)
    expect(blkPciMatcher(rb, '/0000:00:0a.0/0000:01:01.0').matches(ev({ devpath: base }))).toBe(false)
    expect(blkPciMatcher(rootBusPath('20', 'x64'), '/0000:00:0a.0').matches(ev({ devpath: base }))).toBe(false)
  })
  test('unescaped-regex quirk: upstream treats "." in the BDF as a wildcard; the escaped matcher does not', () => {
    const malformed = ev({ devpath: '/devices/pci0000:00/0000:00:0aX0/virtio4/block/vda' })
    expect(blkPciMatcher(rb, '/0000:00:0a.0', { escape: false }).matches(malformed)).toBe(true) // upstream behaviour
    expect(blkPciMatcher(rb, '/0000:00:0a.0').matches(malformed)).toBe(false) // kataref
    const good = ev({ devpath: '/devices/pci0000:00/0000:00:0a.0/virtio4/block/vda' })
    expect(blkPciMatcher(rb, '/0000:00:0a.0', { escape: false }).matches(good)).toBe(blkPciMatcher(rb, '/0000:00:0a.0').matches(good))
  })
  test('#18 MMIO', () => {
    const m = mmioBlkMatcher('vda')
    const p = '/sys/devices/virtio-mmio-cmdline/virtio-mmio.0/virtio0/block'
    expect(m.matches(ev({ devpath: `${p}/vda` }))).toBe(true)
    expect(m.matches(ev({ devpath: `${p}/vdb` }))).toBe(false)
    expect(m.matches(ev({ devpath: `${p}/vdc` }))).toBe(false)
    expect(m.matches(ev({ devpath: `${p}/vda`, subsystem: 'net' }))).toBe(false)
    expect(m.matches(ev({ devpath: `${p}/vda`, devname: '' }))).toBe(false)
  })
  test('#19 pmem', () => {
    const m = pmemMatcher('pmem0')
    expect(m.matches(ev({ devname: 'pmem0', devpath: '/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/btt0.0/block/pmem0' }))).toBe(true)
    expect(m.matches(ev({ devname: 'pmem0', devpath: '/devices/pci0000:00/block/pmem0' }))).toBe(false)
    expect(m.matches(ev({ devname: 'pmem2', devpath: '/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus0/region0/btt0.0/block/pmem2' }))).toBe(false)
  })
  test('#20 SCSI', () => {
    const dp = '/devices/pci0000:00/0000:00:00.0/virtio0/host0/target0:0:0/0:0:0:0/block/sda'
    expect(scsiMatcher('0:0').matches(ev({ devname: 'sda', devpath: dp }))).toBe(true)
    expect(scsiMatcher('2:0').matches(ev({ devname: 'sda', devpath: dp }))).toBe(false)
    expect(scsiMatcher('0:0').matches(ev({ devname: 'sda1', devpath: `${dp}/sda1` }))).toBe(false)
    expect(scsiMatcher('0:0').matches(ev({ devname: 'sda', devpath: dp, action: 'change' }))).toBe(false)
  })
  test('#21 net PCI', () => {
    const rel = '/0000:00:02.0/0000:01:01.0'
    const m = netPciMatcher(rb, rel)
    const dp = `${rb}${rel}`
    const net = (o: Partial<Uevent>) => ev({ subsystem: 'net', devname: '', interface: 'eth0', devpath: dp, ...o })
    expect(m.matches(net({}))).toBe(true)
    expect(m.matches(net({ devpath: `${dp}/net/eth0` }))).toBe(true)
    expect(m.matches(net({ action: 'remove' }))).toBe(false)
    expect(m.matches(net({ interface: '' }))).toBe(false)
    expect(m.matches(net({ devpath: `${rb}/0000:00:02.0/0000:01:02.0` }))).toBe(false)
  })
  test('#22 VFIO group and PCI device', () => {
    const m = vfioMatcher('1')
    expect(m.matches(ev({ devpath: '/devices/virtual/vfio/1' }))).toBe(true)
    expect(m.matches(ev({ devpath: '/devices/virtual/vfio/1extra' }))).toBe(false)
    expect(m.matches(ev({ devpath: '/devices/virtual/vfio/22' }))).toBe(false)
    expect(pciDeviceMatcher(rb, '/0000:00:02.0').matches(ev({ devpath: '/devices/pci0000:00/0000:00:02.0' }))).toBe(true)
  })
})

describe('uevents', () => {
  test('#23 raw uevent parsing', () => {
    const e = parseUevent('add@/devices/x\0ACTION=add\0DEVPATH=/devices/x\0SUBSYSTEM=block\0DEVNAME=vda\0SEQNUM=7\0FOO=a=b\0noequals')
    expect(e).toEqual({ action: 'add', devpath: '/devices/x', subsystem: 'block', devname: 'vda', seqnum: '7', interface: '' })
  })
  test('#24 a stored add returns immediately; after remove the wait times out with "Timeout after 3s ..." (fake timer)', async () => {
    const s = new UeventStore()
    const e = ev({ devpath: '/devices/pci0000:00/0000:00:0a.0/virtio1/block/vda' })
    s.handle(e)
    const m = blkPciMatcher('/devices/pci0000:00', '/0000:00:0a.0')
    expect(await s.waitFor(m)).toBe(e)
    s.handle({ ...e, action: 'remove' })
    let fire!: () => void
    const p = s.waitFor(m, 3000, (f) => ((fire = f), { cancel() {} }))
    expect(s.pending).toBe(1)
    fire()
    await expect(p).rejects.toThrow('Timeout after 3s waiting for uevent blk pci /devices/pci0000:00/0000:00:0a.0')
    expect(s.pending).toBe(0)
  })
  test('a watcher fires once on a later add; change events are ignored; a later add overwrites', async () => {
    const s = new UeventStore()
    const m = mmioBlkMatcher('vdb')
    const p = s.waitFor(m, 10_000)
    s.handle(ev({ action: 'change', devpath: '/x/block/vdb', devname: 'vdb' }))
    expect(s.pending).toBe(1)
    s.handle(ev({ devpath: '/x/block/vdb', devname: 'vdb', seqnum: '9' }))
    expect((await p).seqnum).toBe('9')
    s.handle(ev({ devpath: '/x/block/vdb', devname: 'vdb', seqnum: '10' }))
    expect(s.stored('/x/block/vdb')?.seqnum).toBe('10')
  })
  test('hotplug timeout from the kernel command line; durations print like Rust', () => {
    expect(hotplugTimeoutFromCmdline('quiet agent.hotplug_timeout=10 x')).toBe(10_000)
    expect(hotplugTimeoutFromCmdline('agent.hotplug_timeout=0')).toBe(3_000)
    expect(hotplugTimeoutFromCmdline('')).toBe(3_000)
    expect([formatDuration(3000), formatDuration(1500), formatDuration(500)]).toEqual(['3s', '1.5s', '500ms'])
  })
})

describe('PCI helpers and a mocked sysfs', () => {
  let sys: string
  beforeEach(async () => {
    sys = await mkdtemp(join(tmpdir(), 'kataref-sys-'))
  })
  afterEach(async () => rm(sys, { recursive: true, force: true }))

  test('#25 device tree paths', () => {
    expect(deviceTreeToPciPath('02/01')).toEqual({ rootComplex: '00', path: [{ slot: 2, fn: 0 }, { slot: 1, fn: 0 }] })
    expect(deviceTreeToPciPath('02/00/01').path).toHaveLength(3)
    expect(deviceTreeToPciPath('20/00/02')).toEqual({ rootComplex: '20', path: [{ slot: 0, fn: 0 }, { slot: 2, fn: 0 }] })
    expect(() => deviceTreeToPciPath('20/02')).toThrow(/out of range/)
    expect(() => parsePciPath('')).toThrow()
    expect(formatPciAddress(parsePciAddress('0000:01:1f.7'))).toBe('0000:01:1f.7')
    expect(() => parsePciAddress('0000:01:20.0')).toThrow()
  })

  test('#26 pcipath_to_sysfs needs the bridges; pci_bus/ or child-address inference', async () => {
    const rb = '/devices/pci0000:00'
    const path = parsePciPath('02/03/04')
    await expect(pcipathToSysfs(sys, rb, path)).rejects.toThrow()
    await mkdir(join(sys, rb, '0000:00:02.0/pci_bus/0000:01'), { recursive: true })
    await expect(pcipathToSysfs(sys, rb, path)).rejects.toThrow()
    // second bridge without pci_bus/: bus inferred from children named like PCI addresses
    await mkdir(join(sys, rb, '0000:00:02.0/0000:01:03.0/0000:02:04.0'), { recursive: true })
    await writeFile(join(sys, rb, '0000:00:02.0/0000:01:03.0/0000:02:05.0'), '') // not a directory: ignored
    await mkdir(join(sys, rb, '0000:00:02.0/0000:01:03.0/power'))
    expect(await pcipathToSysfs(sys, rb, path)).toBe('/0000:00:02.0/0000:01:03.0/0000:02:04.0')
    await expect(pcipathToSysfs(sys, rb, [])).rejects.toThrow(/empty/)
  })

  test('sysfs polling turns /sys/class/block links into add events and vanished ones into removes', async () => {
    const dev = '/devices/pci0000:00/0000:00:02.0/0000:01:01.0/virtio3/block/vdb'
    await mkdir(join(sys, dev), { recursive: true })
    await writeFile(join(sys, dev, 'uevent'), 'MAJOR=254\nMINOR=16\nDEVNAME=vdb\nDEVTYPE=disk\n')
    await mkdir(join(sys, 'class/block'), { recursive: true })
    const store = new UeventStore()
    const src = new SysfsUeventSource(store, sys, 10)
    const m = blkPciMatcher('/devices/pci0000:00', '/0000:00:02.0/0000:01:01.0')
    const waiting = src.waitFor(m, 5_000)
    await new Promise((r) => setTimeout(r, 50))
    await symlink(`../../devices/pci0000:00/0000:00:02.0/0000:01:01.0/virtio3/block/vdb`, join(sys, 'class/block/vdb'))
    const got = await waiting
    expect(got.devname).toBe('vdb')
    expect(got.devpath).toBe(dev)
    await rm(join(sys, 'class/block/vdb'))
    await src.scan()
    expect(store.stored(dev)).toBeUndefined()
  })
})

describe('device info and validation', () => {
  test('#27 DeviceInfo', async () => {
    expect(await deviceInfo('/dev/null', true)).toMatchObject({ type: 'c', major: 1, minor: 3 })
    expect((await deviceInfo('/', false)).type).toBe('b')
    await expect(deviceInfo('/nonexistent', true)).rejects.toThrow()
    await expect(deviceInfo('', true)).rejects.toThrow()
    await expect(deviceInfo('/', true)).rejects.toThrow(/neither/)
  })
  test('#28 add_devices validation: each error, nothing applied', async () => {
    const d = (o: Partial<DeviceLike>): DeviceLike => ({ id: '02/01', type: 'blk', vmPath: '', containerPath: '/dev/xda', options: [], ...o })
    expect(() => validateDevice(d({ type: '' }))).toThrow(/invalid type/)
    expect(() => validateDevice(d({ id: '', vmPath: '' }))).toThrow(/invalid ID and VM path/)
    expect(() => validateDevice(d({ containerPath: '' }))).toThrow(/container path/)
    expect(() => validateDevice(d({ type: 'foo' }))).toThrow('Failed to find the device handler foo')
    let waited = 0
    const env = { waitFor: async () => (waited++, ev({})) }
    await expect(addDevices([d({}), d({ type: 'foo' })], env)).rejects.toThrow(/device handler/)
    expect(waited).toBe(0)
  })
})
