import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm, writeFile, mkdir, readdir, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ErofsRootfs, type RootfsDeviceManager, type AttachedBlockDevice } from './erofs-rootfs.ts'
import { isMultiLayerErofs, selectErofsMode, type RootfsMount } from './multi-layer-mounts.ts'
import { formatVerity } from '../../../../images/verity/index.ts'
import { InvalidInputError } from '../../../types/errors.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-rootfs-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

const m = (fsType: string, source = '/x', options: string[] = []): RootfsMount => ({ fsType, source, options })

class FakeDevices implements RootfsDeviceManager {
  log: string[] = []
  attached: { pathOnHost: string; readOnly: boolean; vmdk?: unknown }[] = []
  failAttach = false
  n = 0
  async attachBlock(cfg: { pathOnHost: string; readOnly: boolean; vmdk?: unknown }): Promise<AttachedBlockDevice> {
    if (this.failAttach) throw new Error('hotplug refused')
    this.attached.push(cfg)
    const id = `dev-${this.n++}`
    this.log.push(`attach ${id}`)
    return { deviceId: id, pciPath: `0${this.n + 1}/00` }
  }
  async removeDevice(id: string): Promise<void> { this.log.push(`remove ${id}`) }
}

async function snapshotLayer(id: string, size: number, verity = false): Promise<RootfsMount> {
  const d = join(dir, 'snapshots', id)
  await mkdir(d, { recursive: true })
  const p = join(d, 'layer.erofs')
  await writeFile(p, randomBytes(size))
  const options = ['ro', 'loop']
  if (verity) {
    const hashoffset = Math.ceil(size / 4096) * 4096
    await truncate(p, hashoffset)
    const r = await formatVerity(p, { salt: Buffer.alloc(32), hashOffset: hashoffset })
    await writeFile(`${p}.dmverity`, JSON.stringify({ roothash: r.rootHash, hashoffset }, null, 2))
    options.push(`X-containerd.dmverity=${p}.dmverity`)
  }
  return { fsType: 'erofs', source: p, options }
}

describe('mode selection (§1) — §16 rows 1, 2', () => {
  it('row 1: multi-layer detection', () => {
    expect(isMultiLayerErofs([m('erofs')])).toBe(false)
    expect(isMultiLayerErofs([m('ext4'), m('overlay')])).toBe(false)
    expect(isMultiLayerErofs([m('erofs'), m('btrfs')])).toBe(false)
    expect(isMultiLayerErofs([m('erofs'), m('overlay')])).toBe(true)
    expect(isMultiLayerErofs([m('ext4'), m('EROFS'), m('overlay')])).toBe(true)
    expect(isMultiLayerErofs([m('erofs'), m('format/mkdir/overlay')])).toBe(true)
  })
  it('row 2: 2 erofs → GPT; 1 erofs with device= ×2 → fsmerge; 1 erofs alone → single', () => {
    expect(selectErofsMode([m('erofs', '/a'), m('erofs', '/b'), m('overlay')])?.kind).toBe('gpt')
    expect(selectErofsMode([m('erofs', '/a', ['device=/b1', 'device=/b2']), m('overlay')])).toMatchObject({ kind: 'fsmerge', devices: ['/b1', '/b2'] })
    expect(selectErofsMode([m('erofs', '/a'), m('overlay')])?.kind).toBe('single')
  })
  it('row 12 (pre-check): 130 ext4+erofs mounts fail before anything is made', async () => {
    const mounts = [...Array.from({ length: 130 }, (_, i) => m('erofs', `/l${i}`)), m('overlay')]
    await expect(ErofsRootfs.create({ sid: 's', cid: 'c', mounts, blockDriver: 'virtio-blk-pci', devices: new FakeDevices(), runDir: dir }))
      .rejects.toThrow(/exceeded maximum block devices for multi-layer EROFS: 130 > 129/)
  })
  it('quirk 15.5 mixed fsmeta device= mount + erofs mounts: refused instead of dropping blobs', () => {
    expect(() => selectErofsMode([m('erofs', '/a', ['device=/b']), m('erofs', '/c'), m('overlay')])).toThrow(InvalidInputError)
  })
})

describe('ErofsRootfs GPT mode (§9, §12, §13) — §16 rows 12, 22, 25, 27', () => {
  it('row 12: 129 non-empty erofs mounts, no ext4: passes the pre-check, fails at 128 partitions', async () => {
    const layers = await Promise.all(Array.from({ length: 129 }, (_, i) => snapshotLayer(String(i), 512)))
    await expect(ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [...layers, m('overlay')], blockDriver: 'virtio-blk-pci', devices: new FakeDevices(), runDir: join(dir, 'run') }))
      .rejects.toThrow(/exceeds maximum 128 partitions/)
  })
  it('row 25: full example with rw layer, verity on p1, mkdir directives', async () => {
    const l1 = await snapshotLayer('35', 3 * 4096 + 5, true)
    const l2 = await snapshotLayer('36', 4096)
    const rw = m('ext4', join(dir, 'rw.img'), ['rw', 'loop'])
    const overlay = m('format/mkdir/overlay', 'overlay', ['X-containerd.mkdir.path={{ mount 0 }}/upper:0755', 'X-containerd.mkdir.path={{ mount 0 }}/work:0755', 'upperdir={{ mount 0 }}/upper'])
    const ignored = m('Overlay', 'overlay', ['X-containerd.mkdir.path=/not-this'])
    const devices = new FakeDevices()
    const rootfs = await ErofsRootfs.create({ sid: 'sid', cid: 'cid', mounts: [rw, l1, l2, overlay, ignored], blockDriver: 'virtio-blk-pci', devices, runDir: join(dir, 'run') })
    const st = rootfs.getStorages()
    expect(st.map((s) => [s.fstype, s.source])).toEqual([['ext4', '02/00'], ['erofs', '03/00'], ['erofs', '03/00']])
    expect(st[0]!.options).toEqual(['rw', 'X-kata.overlay-upper', 'X-kata.multi-layer=true'])
    expect(st[1]!.options.slice(0, 4)).toEqual(['X-kata.overlay-lower', 'X-kata.multi-layer=true', 'X-kata.gpt-partitioned=true', 'X-kata.partition-number=1'])
    expect(st[1]!.options.slice(4, 9).map((o) => o.split('=')[0])).toEqual(['X-kata.dmverity-enabled', 'X-kata.dmverity.roothash', 'X-kata.dmverity.hashoffset', 'X-kata.dmverity.no-superblock', 'X-kata.dmverity.salt'])
    expect(st[1]!.options.slice(9)).toEqual(['X-kata.mkdir.path={{ mount 0 }}/upper:0755', 'X-kata.mkdir.path={{ mount 0 }}/work:0755'])
    expect(st[2]!.options).toEqual(['X-kata.overlay-lower', 'X-kata.multi-layer=true', 'X-kata.gpt-partitioned=true', 'X-kata.partition-number=2'])
    expect(st.every((s) => s.mountPoint === '/run/kata-containers/shared/containers/passthrough/cid/rootfs')).toBe(true)
    expect(rootfs.deviceIds).toEqual(['dev-0', 'dev-1'])
    expect(rootfs.rootfsDeviceId).toBe('dev-0')
    expect(devices.attached[1]).toMatchObject({ readOnly: true, pathOnHost: join(dir, 'run', 'sid', 'cid', 'merged_fs.vmdk') })
    // row 27: devices removed first, then head and pads; layer files untouched.
    const cdir = join(dir, 'run', 'sid', 'cid')
    expect((await readdir(cdir)).sort()).toEqual(['gpt_meta_head.img', 'pad-1.img'])
    await rootfs.cleanup()
    expect(devices.log).toEqual(['attach dev-0', 'attach dev-1', 'remove dev-0', 'remove dev-1'])
    expect(await readdir(cdir)).toEqual([])
    await rootfs.cleanup()
    expect(devices.log).toHaveLength(4)
    expect(await readdir(join(dir, 'snapshots', '35'))).toEqual(['layer.erofs', 'layer.erofs.dmverity'])
  })
  it('row 22: a bad sidecar fails rootfs creation naming the partition; nothing is left behind (rollback fix)', async () => {
    const l1 = await snapshotLayer('1', 4096)
    const l2 = await snapshotLayer('2', 4096, true)
    await writeFile(`${l2.source}.dmverity`, '{"roothash":"r","hashoffset":1.5}')
    const devices = new FakeDevices()
    const rw = m('ext4', join(dir, 'rw.img'), ['rw'])
    await expect(ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [rw, l1, l2, m('overlay')], blockDriver: 'virtio-blk-pci', devices, runDir: join(dir, 'run') }))
      .rejects.toThrow(/failed to parse dm-verity metadata file .* for partition 1/)
    expect(devices.log).toEqual(['attach dev-0', 'remove dev-0'])
    expect(await readdir(join(dir, 'run', 's', 'c'))).toEqual([])
  })
  it('attach failure: "failed to attach GPT VMDK block device", head and pads removed', async () => {
    const l1 = await snapshotLayer('1', 4096); const l2 = await snapshotLayer('2', 4096)
    const devices = new FakeDevices(); devices.failAttach = true
    await expect(ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [l1, l2, m('overlay')], blockDriver: 'virtio-blk-pci', devices, runDir: join(dir, 'run') }))
      .rejects.toThrow(/failed to attach GPT VMDK block device/)
    expect(await readdir(join(dir, 'run', 's', 'c'))).toEqual([])
  })
  it('storage driver mapping: scsi uses the SCSI address', async () => {
    const l1 = await snapshotLayer('1', 4096); const l2 = await snapshotLayer('2', 4096)
    const devices: RootfsDeviceManager = { attachBlock: async () => ({ deviceId: 'd', scsiAddr: '0:1' }), removeDevice: async () => undefined }
    const r = await ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [l1, l2, m('overlay')], blockDriver: 'virtio-scsi', devices, runDir: join(dir, 'run') })
    expect(r.getStorages().map((s) => [s.driver, s.source])).toEqual([['scsi', '0:1'], ['scsi', '0:1']])
    await r.cleanup()
  })
  it('no devices at all → error on rootfsDeviceId', async () => {
    const r = await ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [m('overlay')], blockDriver: 'virtio-blk-pci', devices: new FakeDevices(), runDir: join(dir, 'run') })
    expect(() => r.rootfsDeviceId).toThrow(/no devices attached for multi-layer erofs rootfs/)
  })
})

describe('single and fsmerge modes', () => {
  it('quirk 15.4 single layer: dm-verity translated (upstream forwards the raw X-containerd option)', async () => {
    const l = await snapshotLayer('1', 8192, true)
    const devices = new FakeDevices()
    const r = await ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [l, m('overlay')], blockDriver: 'virtio-blk-pci', devices, runDir: join(dir, 'run') })
    const opts = r.getStorages()[0]!.options
    expect(opts.slice(0, 3)).toEqual(['ro', 'X-kata.overlay-lower', 'X-kata.multi-layer=true'])
    expect(opts).toContain('X-kata.dmverity-enabled=true')
    expect(opts.some((o) => o.startsWith('X-containerd.dmverity'))).toBe(false)
    expect(devices.attached[0]).toEqual({ pathOnHost: l.source, readOnly: true })
  })
  it('fsmerge: VMDK of source + device= blobs, no GPT, options minus loop/device=/X-kata.*', async () => {
    const l = await snapshotLayer('1', 1000)
    const blob = join(dir, 'blob'); await writeFile(blob, randomBytes(600))
    const devices = new FakeDevices()
    const r = await ErofsRootfs.create({ sid: 's', cid: 'c', mounts: [{ ...l, options: ['ro', 'loop', `device=${blob}`, 'X-kata.foo=1'] }, m('overlay')], blockDriver: 'virtio-blk-pci', devices, runDir: join(dir, 'run') })
    expect(devices.attached[0]!.vmdk).toEqual({ extents: [{ pathOnHost: l.source, sectors: 2, fileOffset: 0 }, { pathOnHost: blob, sectors: 2, fileOffset: 0 }] })
    expect(r.getStorages()[0]!.options).toEqual(['ro', 'X-kata.overlay-lower', 'X-kata.multi-layer=true'])
    expect(r.gptDisk).toBeUndefined()
  })
})
