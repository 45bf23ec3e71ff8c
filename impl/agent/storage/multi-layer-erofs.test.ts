import { describe, expect, it } from 'vitest'
import { DmCmd, errorChain, formatErrorChain } from '../../dmverity/index.ts'
import { MultiLayerErofsError } from './multi-layer-errors.ts'
import { CONCURRENT_MOUNT_FAILED, allSettledLimited, handleMultiLayerErofsGroup } from './multi-layer-erofs.ts'
import { classifyMultiLayerGroup, partitionPath } from './multi-layer-options.ts'
import { MultiLayerErofsState } from './multi-layer-state.ts'
import { NOTHING_LEFT, erofsLower, ext4Upper, fakeStorageEnv, storageLeftovers } from './fake-storage-context.ts'
import { devmapperEnabled, type StorageLike } from './storage-context.ts'
import { parseMountOptions } from './mount-options.ts'

const T = '/run/kata-containers/c1/multi-layer'
const TARGET = '/run/kata-containers/shared/containers/c1/rootfs'
const name = (p: number) => `kata-verity-vdb${p}-off8192-${String(p).padStart(2, '0').repeat(16)}`
const node = (p: number) => `/dev/mapper/${name(p)}`

function world(opts: { devmapper?: boolean; partitions?: number[] } = {}) {
  const f = fakeStorageEnv(opts)
  f.devices.addDisk('02/01', '/dev/vdb', (opts.partitions ?? [1, 2, 3]).map((p) => `/dev/vdb${p}`))
  f.devices.addDisk('03/00', '/dev/vdc')
  const state = new MultiLayerErofsState(f.env)
  return { ...f, state }
}

function expectNothingLeft(w: ReturnType<typeof world>) {
  expect(storageLeftovers(w, w.state, 'c1')).toEqual(NOTHING_LEFT)
}

async function fails(p: Promise<unknown>): Promise<MultiLayerErofsError> {
  const e = await p.then(() => undefined, (x) => x)
  expect(e).toBeInstanceOf(MultiLayerErofsError)
  return e as MultiLayerErofsError
}

describe('group assembly (§3)', () => {
  it('B30: partitions given 3,1,2 → lower-0=1, lower-1=2, lower-2=3; lowerdir and verity list follow', async () => {
    const w = world()
    const r = (await w.state.addStorages([erofsLower(3), erofsLower(1), erofsLower(2)], 'c1'))!
    expect(r.verityDevices).toEqual([node(1), node(2), node(3)])
    for (const i of [0, 1, 2]) expect(w.mounter.mounts.get(`${T}/lower-${i}`)).toEqual({ source: node(i + 1), target: `${T}/lower-${i}`, fstype: 'erofs', flags: 1, data: 'ro' })
    expect(w.mounter.mounts.get(TARGET)).toEqual({
      source: 'overlay', target: TARGET, fstype: 'overlay', flags: 0,
      data: `upperdir=${T}/upper/upper,lowerdir=${T}/lower-0:${T}/lower-1:${T}/lower-2,workdir=${T}/upper/work`,
    })
    expect(r.mountPoint).toBe(TARGET)
    expect(r.tempMountPoints).toEqual([`${T}/lower-0`, `${T}/lower-1`, `${T}/lower-2`])
    expect(r.mounts).toEqual([TARGET, ...r.tempMountPoints, ...r.verityDevices])
    expect(r.processedMountPoints).toEqual([TARGET])
    expect(w.state.containerVerityDevices.get('c1')).toEqual(r.verityDevices)
    expect(w.dm.devices.get(name(1))?.live?.[0]?.params).toBe(`1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 ${'01'.repeat(32)} ${'0'.repeat(64)}`)
  })

  it('layers mount concurrently: every lower mount starts before any finishes', async () => {
    const w = world()
    w.mounter.delays.push({ target: /lower-/, ms: 20 })
    await w.state.addStorages([erofsLower(1), erofsLower(2), erofsLower(3)], 'c1')
    expect(w.mounter.events.slice(0, 3)).toEqual([0, 1, 2].map((i) => `start ${T}/lower-${i}`))
    expect(w.mounter.events.slice(3, 6).every((e) => e.startsWith('end '))).toBe(true)
  })

  it('B28: GPT layer with verity options but no marker → partition mounted directly, no DM calls', async () => {
    const w = world()
    const s = erofsLower(1)
    s.options = s.options.filter((o) => o !== 'X-kata.dmverity-enabled=true')
    const r = (await w.state.addStorages([s], 'c1'))!
    expect(w.mounter.mounts.get(`${T}/lower-0`)?.source).toBe('/dev/vdb1')
    expect(w.dm.calls).toEqual([])
    expect(r.verityDevices).toEqual([])
    expect(w.state.containerVerityDevices.has('c1')).toBe(false)
  })

  it('non-GPT plain lower: base device mounted, resolved inside its own task', async () => {
    const w = world()
    w.devices.addDisk('04/00', '/dev/vdd')
    await w.state.addStorages([erofsLower(1, { source: '04/00', gpt: false, verity: false })], 'c1')
    expect(w.mounter.mounts.get(`${T}/lower-0`)?.source).toBe('/dev/vdd')
  })

  it('GPT base device is resolved once per source before the concurrent section', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1), erofsLower(2), erofsLower(3)], 'c1')
    expect(w.devices.resolveCalls).toEqual(['02/01'])
  })

  it('explicit ext4 upper is the target and is mounted at T/upper with parsed options', async () => {
    const w = world()
    const r = (await w.state.addStorages([ext4Upper({ mountPoint: '/run/kata-containers/shared/containers/c1/rootfs' }), erofsLower(1, { mountPoint: '/other' })], 'c1'))!
    expect(w.mounter.mounts.get(`${T}/upper`)).toEqual({ source: '/dev/vdc', target: `${T}/upper`, fstype: 'ext4', flags: 4, data: '' })
    expect(r.tempMountPoints).toEqual([`${T}/upper`, `${T}/lower-0`])
    expect(r.processedMountPoints).toEqual([TARGET, '/other'])
  })

  it('sandbox-level group uses T=/run/kata-containers/sandbox/multi-layer', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1)])
    expect(w.mounter.mounts.has('/run/kata-containers/sandbox/multi-layer/lower-0')).toBe(true)
  })

  it('no multi-layer storage → undefined (other handlers take it)', async () => {
    const w = world()
    expect(await w.state.addStorages([{ driver: 'blk', source: '02/01', fstype: 'ext4', options: [], mountPoint: '/x' }], 'c1')).toBeUndefined()
  })

  it('mkdir directives: {{ mount 0 }} before the lowers, {{ mount 1 }} after; escapes rejected', async () => {
    const w = world()
    const s = erofsLower(1, { extra: ['X-kata.mkdir.path={{ mount 0 }}/upper/etc:0755', 'X-kata.mkdir.path={{ mount 1 }}/x'] })
    await w.state.addStorages([s], 'c1')
    expect(w.nodes.dirs.has(`${T}/upper/upper/etc`)).toBe(true)
    expect(w.nodes.dirs.has(`${T}/lower-0/x`)).toBe(true)
    const w2 = world()
    const e = await fails(w2.state.addStorages([erofsLower(1, { extra: ['X-kata.mkdir.path={{ mount 0 }}/../../../etc'] })], 'c1'))
    expect(e.step).toBe('mkdir-directive')
    expectNothingLeft(w2)
  })
})

describe('classification errors (§3.2–§3.4)', () => {
  const cases: [string, StorageLike[], RegExp][] = [
    ['non-ext4 explicit upper', [{ ...ext4Upper(), fstype: 'xfs' }, erofsLower(1)], /explicit upper layer must be ext4, got 'xfs'/],
    ['two uppers', [ext4Upper(), ext4Upper(), erofsLower(1)], /exactly one explicit ext4 upper layer/],
    ['no lowers', [ext4Upper()], /missing erofs lower layer storage/],
    ['empty mkdir path', [erofsLower(1, { extra: ['X-kata.mkdir.path=:0755'] })], /invalid X-kata.mkdir.path directive: ':0755'/],
  ]
  it.each(cases)('%s', async (_, storages, re) => {
    const w = world()
    const e = await fails(w.state.addStorages(storages, 'c1'))
    expect(e.message).toMatch(re)
    expect(e.step).toBe('classify')
    expectNothingLeft(w)
  })
  it('bad cid / target rejected before anything is created', async () => {
    const w = world()
    expect((await fails(w.state.addStorages([erofsLower(1)], '../x'))).step).toBe('prepare')
    expect((await fails(w.state.addStorages([erofsLower(1, { mountPoint: 'relative' })], 'c1'))).step).toBe('prepare')
    expect(w.nodes.under('/run')).toEqual([])
  })
  it('without GPT lowers the request order is kept; missing partition numbers sort last', () => {
    const plain = [erofsLower(3, { gpt: false }), erofsLower(1, { gpt: false })]
    expect(classifyMultiLayerGroup(plain).lowers.map((l) => l.storage)).toEqual(plain)
    const mixed = [erofsLower('x'), erofsLower(2), erofsLower(1)]
    expect(classifyMultiLayerGroup(mixed).lowers.map((l) => l.storage)).toEqual([mixed[2], mixed[1], mixed[0]])
  })
  it('mount options: X-kata.* dropped, flags and data split', () => {
    expect(parseMountOptions(['X-kata.multi-layer=true', 'nodev', 'ro', 'rw', 'noatime', 'errors=remount-ro'])).toEqual({ flags: 0x404, data: 'errors=remount-ro' })
  })
})

describe('per-layer decision table (§5)', () => {
  it('B26: verity marker on a non-GPT layer', async () => {
    const w = world()
    const e = await fails(w.state.addStorages([erofsLower(1, { gpt: false })], 'c1'))
    expect(errorChain(e)).toContain('dm-verity requires GPT-partitioned storage with partition number')
    expect(e).toMatchObject({ step: 'gpt', layerIndex: 0 })
    expect(w.dm.calls).toEqual([])
    expectNothingLeft(w)
  })
  it('B27: GPT layer with partition-number=abc', async () => {
    const w = world()
    const e = await fails(w.state.addStorages([erofsLower('abc')], 'c1'))
    expect(formatErrorChain(e)).toMatch(/GPT-partitioned storage missing partition number/)
    expectNothingLeft(w)
  })
  it('B29: feature off + marker + valid options → not built in; no DM calls; group fails', async () => {
    const w = world({ devmapper: false })
    const e = await fails(w.state.addStorages([erofsLower(1), erofsLower(2, { verity: false })], 'c1'))
    expect(errorChain(e)).toContain('dm-verity was requested but devicemapper support is not built in (KATAREF_USE_DEVMAPPER=0)')
    expect(formatErrorChain(e)).toMatch(/dm-verity support not compiled in/)
    expect(e).toMatchObject({ step: 'verity-disabled', layerIndex: 0, code: 12 })
    expect(w.dm.calls).toEqual([])
    expect(w.dm.opens).toBe(0)
    expectNothingLeft(w)
  })
  it('feature off + invalid verity options still reports not built in (options not parsed)', async () => {
    const w = world({ devmapper: false })
    const s = erofsLower(1, { extra: ['X-kata.dmverity.hashoffset=abc'] })
    expect((await fails(w.state.addStorages([s], 'c1'))).step).toBe('verity-disabled')
  })
  it('feature off: plain layers mount directly', async () => {
    const w = world({ devmapper: false })
    await w.state.addStorages([erofsLower(1, { verity: false }), erofsLower(2, { verity: false })], 'c1')
    expect(w.mounter.mounts.get(`${T}/lower-1`)?.source).toBe('/dev/vdb2')
  })
  it('KATAREF_USE_DEVMAPPER: default on, 0 switches off', () => {
    expect(devmapperEnabled({})).toBe(true)
    expect(devmapperEnabled({ KATAREF_USE_DEVMAPPER: '1' })).toBe(true)
    expect(devmapperEnabled({ KATAREF_USE_DEVMAPPER: '0' })).toBe(false)
  })
  it('invalid verity options: parse error wrapped with "Failed to parse dm-verity options"', async () => {
    const w = world()
    const e = await fails(w.state.addStorages([erofsLower(1, { extra: ['X-kata.dmverity.hashoffset=6144'] })], 'c1'))
    expect(errorChain(e)).toEqual(expect.arrayContaining(['Failed to parse dm-verity options', 'dm-verity hashoffset 6144 is not aligned to blocksize 4096']))
    expect(e.step).toBe('verity-parse')
    expect(w.dm.calls).toEqual([])
  })
  it('B34: partition paths', () => {
    expect(partitionPath('/dev/vda', 1)).toBe('/dev/vda1')
    expect(partitionPath('/dev/nvme0n1', 2)).toBe('/dev/nvme0n1p2')
    expect(partitionPath('/dev/loop0', 1)).toBe('/dev/loop0p1')
  })
  it('B35: partition node absent for 1000 ms', async () => {
    const w = world({ partitions: [] })
    const e = await fails(w.state.addStorages([erofsLower(1)], 'c1'))
    expect(errorChain(e)).toContain('partition device /dev/vdb1 did not appear within 1000 ms')
    expect(e).toMatchObject({ step: 'partition-wait', layerIndex: 0 })
    expect(w.clock.sleeps).toEqual(Array(20).fill(50))
  })
  it('partition node appearing during the wait is accepted', async () => {
    const w = world({ partitions: [] })
    const p = w.state.addStorages([erofsLower(1, { verity: false })], 'c1')
    setImmediate(() => setImmediate(() => w.nodes.addNode('/dev/vdb1')))
    await p
    expect(w.mounter.mounts.get(`${T}/lower-0`)?.source).toBe('/dev/vdb1')
  })
})

describe('rollback (§12) and fixed gaps', () => {
  it('B31: 3 verity layers, layer 1 fails → umount lower-2, lower-0; destroy v2, v0; nothing recorded', async () => {
    const w = world()
    w.mounter.failMount(`${T}/lower-1`)
    const e = await fails(w.state.addStorages([erofsLower(1), erofsLower(2), erofsLower(3)], 'c1'))
    expect(errorChain(e)[0]).toBe(CONCURRENT_MOUNT_FAILED)
    expect(e).toMatchObject({ step: 'mount', layerIndex: 1 })
    const umounts = w.mounter.log.filter((l) => l.startsWith('umount'))
    expect(umounts).toEqual([`umount ${T}/lower-2`, `umount ${T}/lower-0`])
    const removes = w.dm.calls.filter((c) => c.cmd === DmCmd.DEV_REMOVE && c.errno === 0).map((c) => c.name)
    // G1: layer 1 removes its own device inside its task; then the group: v2, v0.
    expect(removes.slice(-2)).toEqual([name(3), name(1)])
    expect(removes).toContain(name(2))
    expect(w.state.containerVerityDevices.has('c1')).toBe(false)
    expectNothingLeft(w)
  })

  it('B32: layers 0 and 2 fail, 2 first in time → layer 0 is reported', async () => {
    const w = world()
    w.mounter.delays.push({ target: `${T}/lower-0`, ms: 30 })
    w.mounter.failMount(`${T}/lower-0`).failMount(`${T}/lower-2`)
    const e = await fails(w.state.addStorages([erofsLower(1), erofsLower(2), erofsLower(3)], 'c1'))
    expect(w.mounter.finished.indexOf(`${T}/lower-2`)).toBeLessThan(w.mounter.finished.indexOf(`${T}/lower-0`))
    expect(e.layerIndex).toBe(0)
    expect(e.context.failedLayers).toEqual([0, 2])
    expect(formatErrorChain(e)).toMatch(/lower-0/)
    expectNothingLeft(w)
  })

  it('G1: verity device created but mount failed → the layer destroys its device and node', async () => {
    const w = world()
    w.mounter.failMount(`${T}/lower-0`)
    const e = await fails(w.state.addStorages([erofsLower(1)], 'c1'))
    expect((e.cause as MultiLayerErofsError).step).toBe('mount')
    expect(w.dm.calls.at(-1)).toMatchObject({ cmdName: 'DM_DEV_REMOVE', name: name(1), flags: 0x20000, errno: 0 })
    expectNothingLeft(w)
  })

  it('G2: TABLE_LOAD failure inside a layer leaves no DM device', async () => {
    const w = world()
    w.dm.failOn({ cmd: DmCmd.TABLE_LOAD, name: name(2) })
    const e = await fails(w.state.addStorages([erofsLower(1), erofsLower(2)], 'c1'))
    expect(e).toMatchObject({ step: 'table-load', layerIndex: 1 })
    expectNothingLeft(w)
  })

  it('G3: overlay mount failure after the concurrent section undoes every layer', async () => {
    const w = world()
    w.mounter.failMount(TARGET)
    const e = await fails(w.state.addStorages([ext4Upper(), erofsLower(1), erofsLower(2)], 'c1'))
    expect(e.step).toBe('overlay')
    expect(w.mounter.log.filter((l) => l.startsWith('umount'))).toEqual([`umount ${T}/lower-1`, `umount ${T}/lower-0`, `umount ${T}/upper`])
    expectNothingLeft(w)
  })

  it('G3: deferred {{ mount 1 }} mkdir failure undoes every layer', async () => {
    const w = world()
    w.nodes.failOn('mkdir', `${T}/lower-0/x`)
    const e = await fails(w.state.addStorages([erofsLower(1, { extra: ['X-kata.mkdir.path={{ mount 1 }}/x'] }), erofsLower(2)], 'c1'))
    expect(e.step).toBe('mkdir-directive')
    expectNothingLeft(w)
  })

  it('G4: a layer failure also unmounts the explicit upper and drops the lowers', async () => {
    const w = world()
    w.mounter.failMount(`${T}/lower-1`)
    await fails(w.state.addStorages([ext4Upper(), erofsLower(1), erofsLower(2)], 'c1'))
    expect(w.mounter.log.at(-1)).toBe(`umount ${T}/upper`)
    expect(w.state.groups('c1')).toEqual([])
    expectNothingLeft(w)
  })

  it('upper mount failure undoes the scratch dirs', async () => {
    const w = world()
    w.mounter.failMount(`${T}/upper`)
    expect((await fails(w.state.addStorages([ext4Upper(), erofsLower(1)], 'c1'))).step).toBe('upper-mount')
    expect(w.dm.calls).toEqual([])
    expectNothingLeft(w)
  })

  it('rollback failures are logged and reported in the error context, not thrown', async () => {
    const w = world()
    w.mounter.failMount(TARGET).failUmount(`${T}/lower-0`, 16, 1)
    const e = await fails(w.state.addStorages([erofsLower(1)], 'c1'))
    expect(e.context.rollbackErrors).toEqual([expect.stringMatching(/umount .*lower-0/)])
  })
})

describe('teardown (§10, §11)', () => {
  it('B33: explicit upper + 3 verity layers, RemoveContainer: unmount target, T/upper, lowers; destroy v2, v1, v0; maps cleared', async () => {
    const w = world()
    await w.state.addStorages([ext4Upper(), erofsLower(1), erofsLower(2), erofsLower(3)], 'c1')
    w.dm.calls.length = 0
    w.mounter.log.length = 0
    const report = await w.state.removeContainer('c1')
    expect(w.mounter.log).toEqual([`umount ${TARGET}`, `umount ${T}/upper`, `umount ${T}/lower-0`, `umount ${T}/lower-1`, `umount ${T}/lower-2`])
    expect(w.dm.calls.map((c) => [c.cmdName, c.name, c.flags])).toEqual([3, 2, 1].map((p) => ['DM_DEV_REMOVE', name(p), 0x20000]))
    expect(report.destroyedVerityDevices).toEqual([node(3), node(2), node(1)])
    expect(report.failures).toEqual([])
    expectNothingLeft(w)
  })

  it('RemoveContainer removes the run-backed upper/work trees (overlay leaves work/work and the writes there), not only empty dirs', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1), erofsLower(2)], 'c1')
    // What the kernel's overlayfs and the container leave behind in the run-backed upper.
    await w.nodes.mkdirAll(`${T}/upper/work/work`)
    await w.nodes.mkdirAll(`${T}/upper/upper/var/log`)
    const report = await w.state.removeContainer('c1')
    expect(report.failures).toEqual([])
    expectNothingLeft(w)
  })

  it('scratch trees are kept while the overlay is still mounted', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1)], 'c1')
    await w.nodes.mkdirAll(`${T}/upper/upper/data`)
    w.mounter.failUmount(TARGET, 16, 1)
    await w.state.removeContainer('c1')
    expect(await w.nodes.exists(`${T}/upper/upper/data`)).toBe(true)
  })

  it('RemoveContainer with a still-mounted lower: deferred remove, device goes when unmounted', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1)], 'c1')
    w.mounter.failUmount(`${T}/lower-0`, 16, 1)
    const report = await w.state.removeContainer('c1')
    expect(report.failures).toEqual([expect.stringMatching(/umount .*lower-0/)])
    expect(w.dm.devices.get(name(1))?.deferredRemove).toBe(true)
    await w.mounter.umount(`${T}/lower-0`)
    expect(w.dm.devices.size).toBe(0)
  })

  it('G5: sandbox-level verity devices are destroyed by DestroySandbox', async () => {
    const w = world()
    const r = (await w.state.addStorages([erofsLower(1)]))!
    expect(w.state.sandboxVerityDevices).toEqual(r.verityDevices)
    const report = await w.state.destroySandbox()
    expect(report.destroyedVerityDevices).toEqual([node(1)])
    expect(w.state.sandboxVerityDevices).toEqual([])
    expectNothingLeft(w)
  })

  it('DestroySandbox removes leftovers: containers not removed, and untracked kata-verity devices (sweep)', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1)], 'c1')
    await w.state.addStorages([erofsLower(2, { mountPoint: '/run/kata-containers/shared/containers/c2/rootfs' })], 'c2')
    const { createDmverityDevice, parseDmverityOptions } = await import('../../dmverity/index.ts')
    await createDmverityDevice({ dm: w.dm, nodes: w.nodes }, '/dev/vdb3', parseDmverityOptions(['X-kata.dmverity.roothash=ee', 'X-kata.dmverity.hashoffset=8192']))
    const report = await w.state.destroySandbox()
    expect(report.destroyedVerityDevices).toContain('/dev/mapper/kata-verity-vdb3-off8192-ee')
    expect(report.failures).toEqual([])
    expectNothingLeft(w)
    expect(w.state.containerVerityDevices.size).toBe(0)
  })

  it('containerVerityDevices is extended, not replaced, by a second group of the same container', async () => {
    const w = world()
    await w.state.addStorages([erofsLower(1)], 'c1')
    await w.state.addStorages([erofsLower(2, { mountPoint: '/run/kata-containers/shared/containers/c1/other' })], 'c1')
    expect(w.state.containerVerityDevices.get('c1')).toEqual([node(1), node(2)])
  })
})

describe('handleMultiLayerErofsGroup directly', () => {
  it('returns a teardown record with created dirs in creation order', async () => {
    const w = world()
    const r = await handleMultiLayerErofsGroup([erofsLower(1)], { ...w.env, cid: 'c1' })
    expect(r.record).toMatchObject({ cid: 'c1', target: TARGET, mounts: [TARGET, `${T}/lower-0`], verityDevices: [node(1)] })
    expect(r.record.createdDirs.slice(0, 3)).toEqual(['/run', '/run/kata-containers', '/run/kata-containers/c1'])
  })
})

describe('allSettledLimited (layer concurrency)', () => {
  it('runs at most `limit` tasks at once, keeps result order, and settles every task', async () => {
    for (const limit of [1, 3, undefined]) {
      let running = 0
      let peak = 0
      const tasks = Array.from({ length: 7 }, (_, i) => async () => {
        running++
        peak = Math.max(peak, running)
        await new Promise((r) => setTimeout(r, 7 - i))
        running--
        if (i === 4) throw new Error('four')
        return i
      })
      const out = await allSettledLimited(tasks, limit)
      expect(peak).toBe(limit ?? 7)
      expect(out.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([0, 1, 2, 3, 'four', 5, 6])
    }
  })
})
