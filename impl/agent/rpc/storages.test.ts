import { describe, expect, it } from 'vitest'
import { Code } from '../../types/errors.ts'
import { erofsLower, fakeStorageEnv, parseFailpoints, FAILPOINT_OPTION } from '../storage/index.ts'
import { AgentStorages, StorageGroupError, StorageRequestError } from './storages.ts'

function world(opts: { failpoints?: boolean; devmapper?: boolean } = {}) {
  const f = fakeStorageEnv(opts.devmapper === undefined ? {} : { devmapper: opts.devmapper })
  f.devices.addDisk('02/01', '/dev/vdb', [1, 2, 3, 4].map((p) => `/dev/vdb${p}`))
  const storages = new AgentStorages({ env: f.env, failpoints: opts.failpoints ?? false })
  return { ...f, storages }
}

const lowers = (extra0: string[] = []) => [1, 2, 3].map((n) => erofsLower(n, n === 1 ? { extra: extra0 } : {}))

function expectNothingLeft(w: ReturnType<typeof world>) {
  expect([...w.dm.devices.keys()]).toEqual([])
  expect([...w.nodes.nodes.keys()].filter((n) => n.startsWith('/dev/mapper/'))).toEqual([])
  expect([...w.mounter.mounts.keys()]).toEqual([])
  expect(w.nodes.under('/run')).toEqual([])
}

describe('AgentStorages (CreateContainer / RemoveContainer / DestroySandbox storage part)', () => {
  it('mounts a group, records container_mounts and verity devices; RemoveContainer leaves nothing', async () => {
    const w = world()
    const mounts = await w.storages.addContainerStorages('c1', lowers())
    expect(mounts[0]).toBe('/run/kata-containers/shared/containers/c1/rootfs')
    expect(mounts.filter((m) => m.startsWith('/dev/mapper/'))).toHaveLength(3)
    expect(w.storages.multiLayer.containerVerityDevices.get('c1')).toHaveLength(3)
    const report = await w.storages.removeContainer('c1')
    expect(report.failures).toEqual([])
    expectNothingLeft(w)
  })

  it('refuses a storage it has no handler for before mounting anything (UNIMPLEMENTED)', async () => {
    const w = world()
    const other = { driver: 'local', source: 'x', fstype: 'tmpfs', options: [], mountPoint: '/run/other' }
    await expect(w.storages.add([...lowers(), other], 'c1')).rejects.toMatchObject({ code: Code.UNIMPLEMENTED, message: expect.stringContaining("storage driver 'local'") })
    expect(w.dm.calls).toEqual([])
    expectNothingLeft(w)
  })

  it('a failed group crosses the RPC boundary as one message: the whole chain, then [layer N, step S]; code from the step', async () => {
    const w = world({ failpoints: true })
    const e = await w.storages.add(lowers([`${FAILPOINT_OPTION}table-load:1`]), 'c1').then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(StorageGroupError)
    const g = e as StorageGroupError
    expect(g.step).toBe('table-load')
    expect(g.layerIndex).toBe(1)
    expect(g.code).toBe(Code.INTERNAL)
    expect(g.message).toMatch(/^failed to mount one or more EROFS layers concurrently: multi-layer erofs layer 1 \(blk 02\/01\): table-load failed: .*\[layer 1, step table-load\]$/)
    expectNothingLeft(w)
  })

  it('every failpoint step fails its layer and the group leaves nothing (with the fakes)', async () => {
    for (const [step, code] of [['partition-wait', Code.DEADLINE_EXCEEDED], ['create', Code.INTERNAL], ['resume', Code.INTERNAL], ['status', Code.INTERNAL], ['mknod', Code.INTERNAL], ['mount', Code.INTERNAL]] as const) {
      const w = world({ failpoints: true })
      await expect(w.storages.add(lowers([`${FAILPOINT_OPTION}${step}:2`]), 'c1'), step).rejects.toMatchObject({ code, step, layerIndex: 2 })
      expectNothingLeft(w)
    }
    const w = world({ failpoints: true })
    await expect(w.storages.add(lowers([`${FAILPOINT_OPTION}overlay:0`]), 'c1')).rejects.toMatchObject({ step: 'overlay', layerIndex: undefined })
    expectNothingLeft(w)
  })

  it('a failpoint on partition 1 does not hit partition 11 (names kata-verity-vdb1-off… vs vdb11-off…)', async () => {
    const f = fakeStorageEnv()
    f.devices.addDisk('02/01', '/dev/vdb', Array.from({ length: 11 }, (_, i) => `/dev/vdb${i + 1}`))
    const storages = new AgentStorages({ env: f.env, failpoints: true })
    const group = [1, 11].map((n) => erofsLower(n, n === 1 ? { extra: [`${FAILPOINT_OPTION}mknod:0`] } : {}))
    await expect(storages.add(group, 'c1')).rejects.toMatchObject({ step: 'mknod', layerIndex: 0, context: expect.objectContaining({ failedLayers: [0] }) })
    expect([...f.dm.devices.keys()]).toEqual([])
  })

  it('failpoint options are ignored unless the agent runs with --failpoints', async () => {
    const w = world()
    await w.storages.add(lowers([`${FAILPOINT_OPTION}create:1`]), 'c1')
    expect(w.dm.devices.size).toBe(3)
    await w.storages.destroy()
    expectNothingLeft(w)
  })

  it('malformed failpoints and layer-concurrency values are INVALID_ARGUMENT', async () => {
    expect(() => parseFailpoints([erofsLower(1, { extra: [`${FAILPOINT_OPTION}explode:1`] })])).toThrow(/expected X-kataref.failpoint=/)
    const w = world({ failpoints: true })
    await expect(w.storages.add(lowers(['X-kataref.layer-concurrency=0']), 'c1')).rejects.toBeInstanceOf(StorageRequestError)
    expectNothingLeft(w)
  })

  it('X-kataref.layer-concurrency=1 (debug) mounts the same group one layer after another', async () => {
    const w = world({ failpoints: true })
    await w.storages.add(lowers(['X-kataref.layer-concurrency=1']), 'c1')
    expect([...w.mounter.mounts.keys()].filter((m) => m.includes('lower-'))).toHaveLength(3)
    await w.storages.removeContainer('c1')
    expectNothingLeft(w)
  })

  it('devicemapper off: verity layers fail closed (UNIMPLEMENTED), no DM call', async () => {
    const w = world({ devmapper: false })
    await expect(w.storages.add(lowers(), 'c1')).rejects.toMatchObject({ code: Code.UNIMPLEMENTED, step: 'verity-disabled', message: expect.stringContaining('not compiled in') })
    expect(w.dm.calls).toEqual([])
    expectNothingLeft(w)
  })

  it('DestroySandbox tears down containers and sandbox-level groups; nothing to do when no storage was ever used', async () => {
    const w = world()
    expect(await w.storages.destroy()).toBeUndefined()
    await w.storages.add([erofsLower(4, { mountPoint: '/run/kata-containers/sandbox/ml' })])
    await w.storages.addContainerStorages('c1', lowers())
    const report = (await w.storages.destroy())!
    expect(report.destroyedVerityDevices).toHaveLength(4)
    expectNothingLeft(w)
  })
})
