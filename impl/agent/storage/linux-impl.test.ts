// The guest implementations, exercised on the host where possible: sysfs discovery over a fake
// sysfs tree, mountinfo parsing, real mount(2)/mknod(2) via koffi when running as root, and the
// koffi DM backend up to the ioctl (the host has no device-mapper: /dev/null answers ENOTTY).
import { mkdtemp, mkdir, rm, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KoffiDmBackend, LinuxNodeOps, DmClient, DmIoctlError, createDmverityDevice, parseDmverityOptions, errorChain, dmOptionsReadOnlyNoUdev, makedev } from '../../dmverity/index.ts'
import { FakeClock } from './fake-storage-context.ts'
import { LinuxMounter, parseMountInfo, shortenOverlayData } from './linux-mounter.ts'
import { SysfsDeviceResolver, splitPciPath } from './sysfs-devices.ts'

const isRoot = process.getuid?.() === 0
let root: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kataref-storage-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('SysfsDeviceResolver', () => {
  it('splits PCI paths, pxb root bus ≥ 0x20', () => {
    expect(splitPciPath('02/01')).toEqual({ rootComplex: '00', slots: ['02', '01'] })
    expect(splitPciPath('20/00/02')).toEqual({ rootComplex: '20', slots: ['00', '02'] })
    expect(() => splitPciPath('02/zz')).toThrow(/invalid PCI path/)
  })

  it('resolves blk behind a bridge, blk behind a pxb root bus, and scsi id:lun', async () => {
    const sys = join(root, 'sys')
    const dev = join(root, 'dev')
    await mkdir(join(sys, 'devices/pci0000:00/0000:00:02.0/pci_bus/0000:01'), { recursive: true })
    await mkdir(join(sys, 'devices/pci0000:00/0000:00:02.0/0000:01:01.0/virtio3/block/vdb/vdb1'), { recursive: true })
    await mkdir(join(sys, 'devices/pci0000:20/0000:20:00.0/pci_bus/0000:21'), { recursive: true })
    await mkdir(join(sys, 'devices/pci0000:20/0000:20:00.0/0000:21:02.0/virtio5/block/vdc'), { recursive: true })
    await mkdir(join(sys, 'bus/scsi/devices/0:0:1:2/block/sda'), { recursive: true })
    await mkdir(join(sys, 'class/scsi_host/host0'), { recursive: true })
    await writeFile(join(sys, 'class/scsi_host/host0/scan'), '')
    await mkdir(dev, { recursive: true })
    for (const n of ['vdb', 'vdc', 'sda']) await writeFile(join(dev, n), '')
    const r = new SysfsDeviceResolver(sys, dev, new FakeClock())
    const dl = { at: 1000, budgetMs: 1000 }
    expect(await r.resolveBaseDevice({ driver: 'blk', source: '02/01', fstype: 'erofs', options: [], mountPoint: '/x' }, dl)).toBe(join(dev, 'vdb'))
    expect(await r.resolveBaseDevice({ driver: 'blk', source: '20/00/02', fstype: 'erofs', options: [], mountPoint: '/x' }, dl)).toBe(join(dev, 'vdc'))
    expect(await r.resolveBaseDevice({ driver: 'scsi', source: '1:2', fstype: 'erofs', options: [], mountPoint: '/x' }, dl)).toBe(join(dev, 'sda'))
    await expect(r.resolveBaseDevice({ driver: 'nvdimm', source: 'x', fstype: 'erofs', options: [], mountPoint: '/x' }, dl)).rejects.toThrow("unsupported driver type 'nvdimm' for multi-layer erofs")
    const clock = new FakeClock()
    const r2 = new SysfsDeviceResolver(sys, dev, clock)
    await expect(r2.resolveBaseDevice({ driver: 'blk', source: '03/00', fstype: 'erofs', options: [], mountPoint: '/x' }, { at: 3000, budgetMs: 3000 })).rejects.toThrow(/within 3000 ms/)
    expect(clock.now()).toBe(3000)
    await expect(r2.waitForPartition(join(dev, 'vdb9'), { at: clock.now() + 1000, budgetMs: 1000 })).rejects.toThrow(`partition device ${join(dev, 'vdb9')} did not appear within 1000 ms`)
  })
})

describe('LinuxMounter', () => {
  it('overlay data longer than a page is rewritten relative to the common parent', () => {
    const T = `/run/kata-containers/${'c'.repeat(64)}/multi-layer`
    const lowers = Array.from({ length: 60 }, (_, i) => `${T}/lower-${i}`)
    const data = `upperdir=${T}/upper/upper,lowerdir=${lowers.join(':')},workdir=${T}/upper/work`
    expect(data.length).toBeGreaterThan(4095)
    const r = shortenOverlayData(data)!
    expect(r.cwd).toBe(T)
    expect(r.data).toBe(`upperdir=upper/upper,lowerdir=${lowers.map((_, i) => `lower-${i}`).join(':')},workdir=upper/work`)
    expect(shortenOverlayData(`upperdir=${T}/upper/upper,lowerdir=${T}/lower-0,workdir=${T}/upper/work`)).toBeUndefined()
  })
  it('parses mountinfo, including escaped mount points', () => {
    const text = '36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n' +
      '40 1 0:33 / /run/kata rw shared:2 - overlay overlay rw,lowerdir=/a:/b\n'
    expect(parseMountInfo(text)).toEqual([
      { mountPoint: '/mnt/with space', fstype: 'ext3', source: '/dev/root' },
      { mountPoint: '/run/kata', fstype: 'overlay', source: 'overlay' },
    ])
  })
  it.runIf(isRoot)('mounts and unmounts a tmpfs with mount(2); same-fstype remount is a no-op', async () => {
    const target = join(root, 'mnt')
    await mkdir(target)
    const m = new LinuxMounter()
    await m.mount({ source: 'kataref', target, fstype: 'tmpfs', flags: 0, data: 'size=1m' })
    try {
      expect(await m.isMounted(target, 'tmpfs')).toBe(true)
      await m.mount({ source: 'kataref', target, fstype: 'tmpfs', flags: 0, data: 'size=1m' })
    } finally {
      await m.umount(target)
    }
    expect(await m.isMounted(target)).toBe(false)
    await expect(m.umount(target)).rejects.toThrow(/EINVAL/)
  })
  it.runIf(isRoot)('mounts an overlay whose data exceeds a page (60 lowers, relative rewrite), cwd restored', async () => {
    const m = new LinuxMounter()
    const base = join(root, 'ovl')
    await mkdir(base)
    await m.mount({ source: 'kataref', target: base, fstype: 'tmpfs', flags: 0, data: 'size=4m' })
    try {
      const T = join(base, 'x'.repeat(60), 'multi-layer')
      const lowers = Array.from({ length: 60 }, (_, i) => join(T, `lower-${i}`))
      for (const d of [...lowers, join(T, 'upper/upper'), join(T, 'upper/work'), join(base, 'rootfs')]) await mkdir(d, { recursive: true })
      await writeFile(join(lowers[59]!, 'from-last'), 'x')
      const data = `upperdir=${T}/upper/upper,lowerdir=${lowers.join(':')},workdir=${T}/upper/work`
      expect(data.length).toBeGreaterThan(4095)
      const cwd = process.cwd()
      try {
        await m.mount({ source: 'overlay', target: join(base, 'rootfs'), fstype: 'overlay', flags: 0, data })
      } catch (e) {
        if (/ENODEV/.test(String(e))) return // no overlayfs on this host kernel
        throw e
      }
      expect(process.cwd()).toBe(cwd)
      expect(await stat(join(base, 'rootfs', 'from-last')).then(() => true)).toBe(true)
      await m.umount(join(base, 'rootfs'))
    } finally {
      await m.umount(base)
    }
  })
})

describe('LinuxNodeOps', () => {
  it('mkdirAll returns created dirs outermost first; rmdirIfEmpty', async () => {
    const n = new LinuxNodeOps()
    const created = await n.mkdirAll(join(root, 'a/b/c'))
    expect(created).toEqual([join(root, 'a'), join(root, 'a/b'), join(root, 'a/b/c')])
    expect(await n.mkdirAll(join(root, 'a/b/c'))).toEqual([])
    expect(await n.rmdirIfEmpty(join(root, 'a/b'))).toBe(false)
    expect(await n.rmdirIfEmpty(join(root, 'a/b/c'))).toBe(true)
    expect(await n.rmdirIfEmpty(join(root, 'nope'))).toBe(false)
  })
  it.runIf(isRoot)('mknodBlock makes a block node with the given major:minor and mode', async () => {
    const p = join(root, 'blk')
    await new LinuxNodeOps().mknodBlock(p, 0o600, 253, 0x12345)
    const st = await stat(p)
    expect(st.isBlockDevice()).toBe(true)
    expect(st.mode & 0o777).toBe(0o600)
    expect(st.rdev).toBe(Number(makedev(253, 0x12345)))
    expect(st.rdev).toBe(0x1230fd45)
  })
})

describe('KoffiDmBackend (host: no device-mapper)', () => {
  it('missing control node → create fails at step control, before any ioctl', async () => {
    const e = await createDmverityDevice({ dm: new KoffiDmBackend(join(root, 'no-control')), nodes: new LinuxNodeOps() }, '/dev/vdb1',
      parseDmverityOptions(['X-kata.dmverity.roothash=aa', 'X-kata.dmverity.hashoffset=8192'])).catch((x) => x)
    expect(e.step).toBe('control')
    expect(errorChain(e).join(': ')).toMatch(/ENOENT/)
  })
  it('ioctl plumbing reaches the kernel: /dev/null answers ENOTTY', async () => {
    const c = await new KoffiDmBackend('/dev/null').openControl()
    try {
      const e = await new DmClient(c).deviceCreate('kata-verity-test', dmOptionsReadOnlyNoUdev()).catch((x) => x)
      expect(e).toBeInstanceOf(DmIoctlError)
      expect(e.errno).toBe(25)
      expect(e.message).toBe('DM_DEV_CREATE kata-verity-test: ENOTTY (25)')
    } finally {
      await c.close()
    }
  })
})
