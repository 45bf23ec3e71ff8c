// 8 dm-verity layers plus an explicit upper; one thing fails at each step in turn, on each layer.
// Whatever fails, nothing may be left behind in the fakes (DM devices, /dev/mapper nodes, mounts,
// scratch dirs, bookkeeping), and the same request must then succeed and tear down cleanly.
import { describe, expect, it } from 'vitest'
import { DmCmd, errorChain } from '../../dmverity/index.ts'
import { MultiLayerErofsError, type MultiLayerStep } from './multi-layer-errors.ts'
import { CONCURRENT_MOUNT_FAILED } from './multi-layer-erofs.ts'
import { MultiLayerErofsState } from './multi-layer-state.ts'
import { NOTHING_LEFT, erofsLower, ext4Upper, fakeStorageEnv, storageLeftovers, type FakeStorage } from './fake-storage-context.ts'
import type { StorageLike } from './storage-context.ts'

const LAYERS = 8
const T = '/run/kata-containers/c1/multi-layer'
const TARGET = '/run/kata-containers/shared/containers/c1/rootfs'
const name = (p: number) => `kata-verity-vdb${p}-off8192-${String(p).padStart(2, '0').repeat(16)}`

interface World extends FakeStorage {
  state: MultiLayerErofsState
  storages: StorageLike[]
}

function world(missingPartition?: number): World {
  const f = fakeStorageEnv()
  const parts = Array.from({ length: LAYERS }, (_, i) => i + 1).filter((p) => p !== missingPartition)
  f.devices.addDisk('02/01', '/dev/vdb', parts.map((p) => `/dev/vdb${p}`))
  f.devices.addDisk('03/00', '/dev/vdc')
  // Scramble completion order: later layers are not always slower.
  for (let i = 0; i < LAYERS; i++) f.mounter.delays.push({ target: `${T}/lower-${i}`, ms: (i * 5) % 7 })
  // Request order reversed on purpose (sorting by partition number must still give lower-i = p(i+1)).
  const storages = [ext4Upper(), ...Array.from({ length: LAYERS }, (_, i) => erofsLower(LAYERS - i, { extra: ['X-kata.mkdir.path={{ mount 0 }}/upper/etc'] }))]
  return { ...f, state: new MultiLayerErofsState(f.env), storages }
}

function expectNothingLeft(w: World) {
  expect(storageLeftovers(w, w.state, 'c1')).toEqual(NOTHING_LEFT)
}

type Injector = (w: World, k: number) => void
const layerSteps: [MultiLayerStep, Injector, ((k: number) => number) | undefined][] = [
  ['partition-wait', () => {}, (k) => k + 1],
  ['verity-parse', (w, k) => { w.storages[LAYERS - k]!.options.push('X-kata.dmverity.blocksize=abc') }, undefined],
  ['create', (w, k) => { w.dm.failOn({ cmd: DmCmd.DEV_CREATE, name: name(k + 1) }) }, undefined],
  ['table-load', (w, k) => { w.dm.failOn({ cmd: DmCmd.TABLE_LOAD, name: name(k + 1) }) }, undefined],
  ['resume', (w, k) => { w.dm.failOn({ cmd: DmCmd.DEV_SUSPEND, name: name(k + 1) }) }, undefined],
  ['status', (w, k) => { w.dm.failOn({ cmd: DmCmd.DEV_STATUS, name: name(k + 1) }) }, undefined],
  ['mknod', (w, k) => { w.nodes.failOn('mknod', `/dev/mapper/${name(k + 1)}`) }, undefined],
  ['mount', (w, k) => { w.mounter.failMount(`${T}/lower-${k}`) }, undefined],
]

async function attempt(w: World): Promise<MultiLayerErofsError> {
  const e = await w.state.addStorages(w.storages, 'c1').then(() => undefined, (x) => x)
  expect(e).toBeInstanceOf(MultiLayerErofsError)
  return e as MultiLayerErofsError
}

async function thenSucceedsAndTearsDown(w: World) {
  w.dm.clearFailures()
  w.nodes.clearFailures()
  for (let p = 1; p <= LAYERS; p++) if (!(await w.nodes.exists(`/dev/vdb${p}`))) w.nodes.addNode(`/dev/vdb${p}`)
  const w2: World = { ...w, storages: w.storages.map((s) => ({ ...s, options: s.options.filter((o) => o !== 'X-kata.dmverity.blocksize=abc') })) }
  const fresh = new MultiLayerErofsState(w.env)
  const r = (await fresh.addStorages(w2.storages, 'c1'))!
  expect(r.verityDevices).toHaveLength(LAYERS)
  const report = await fresh.removeContainer('c1')
  expect(report.failures).toEqual([])
  expectNothingLeft({ ...w, state: fresh })
}

describe('concurrent-mount-rollback: 8 layers, one fails at each step in turn', () => {
  for (const [step, inject, missing] of layerSteps) {
    it.each(Array.from({ length: LAYERS }, (_, k) => k))(`${step} fails on layer %i → nothing left behind`, async (k) => {
      const w = world(missing?.(k))
      inject(w, k)
      const e = await attempt(w)
      expect(errorChain(e)[0]).toBe(CONCURRENT_MOUNT_FAILED)
      expect(e.step).toBe(step)
      expect(e.layerIndex).toBe(k)
      expect(e.context.failedLayers).toEqual([k])
      expectNothingLeft(w)
      if (step !== 'mount') await thenSucceedsAndTearsDown(w)
    })
  }

  const groupSteps: [MultiLayerStep, (w: World) => void][] = [
    ['upper-mount', (w) => { w.mounter.failMount(`${T}/upper`) }],
    ['mkdir-directive', (w) => { w.nodes.failOn('mkdir', `${T}/upper/upper/etc`) }],
    ['resolve', (w) => { w.devices.failResolve('02/01') }],
    ['prepare', (w) => { w.nodes.failOn('mkdir', `${T}/lower-5`) }],
    ['overlay', (w) => { w.mounter.failMount(TARGET) }],
  ]
  it.each(groupSteps)('group step %s fails → nothing left behind', async (step, inject) => {
    const w = world()
    inject(w)
    const e = await attempt(w)
    expect(e.step).toBe(step)
    expectNothingLeft(w)
  })

  it('every layer fails at mount → all 8 devices destroyed, lowest index reported', async () => {
    const w = world()
    w.mounter.failMount(/lower-/)
    const e = await attempt(w)
    expect(e.layerIndex).toBe(0)
    expect(e.context.failedLayers).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expectNothingLeft(w)
  })

  it('success: 8 verity devices in layer order, then RemoveContainer leaves nothing', async () => {
    const w = world()
    const r = (await w.state.addStorages(w.storages, 'c1'))!
    expect(r.verityDevices).toEqual(Array.from({ length: LAYERS }, (_, i) => `/dev/mapper/${name(i + 1)}`))
    await w.state.removeContainer('c1')
    expectNothingLeft(w)
  })
})
