// Property: for any group shape (1–8 lowers, any mix of verity/plain, with or without an explicit
// upper, any request order) and any single injected failure, either the group mounts and
// RemoveContainer leaves nothing, or the group fails and leaves nothing — never a leak.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DmCmd } from '../../dmverity/index.ts'
import { MultiLayerErofsError } from './multi-layer-errors.ts'
import { MultiLayerErofsState } from './multi-layer-state.ts'
import { erofsLower, ext4Upper, fakeStorageEnv } from './fake-storage-context.ts'

const T = '/run/kata-containers/c1/multi-layer'
const TARGET = '/run/kata-containers/shared/containers/c1/rootfs'

type Failure =
  | { kind: 'dm'; cmd: DmCmd; layer: number }
  | { kind: 'mknod' | 'mount' | 'partition'; layer: number }
  | { kind: 'overlay' | 'upper' | 'none' }

const failureArb = (n: number): fc.Arbitrary<Failure> => fc.oneof(
  fc.record({ kind: fc.constant('dm' as const), cmd: fc.constantFrom(DmCmd.DEV_CREATE, DmCmd.TABLE_LOAD, DmCmd.DEV_SUSPEND, DmCmd.DEV_STATUS), layer: fc.nat(n - 1) }),
  fc.record({ kind: fc.constantFrom('mknod' as const, 'mount' as const, 'partition' as const), layer: fc.nat(n - 1) }),
  fc.record({ kind: fc.constantFrom('overlay' as const, 'upper' as const, 'none' as const) }),
)

const shapeArb = fc.integer({ min: 1, max: 8 }).chain((n) => fc.record({
  n: fc.constant(n),
  verity: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
  upper: fc.boolean(),
  order: fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i + 1), { minLength: n, maxLength: n }),
  failure: failureArb(n),
}))

describe('multi-layer erofs: no leak under any single failure', () => {
  it('fails cleanly or mounts and tears down cleanly', async () => {
    await fc.assert(fc.asyncProperty(shapeArb, async ({ n, verity, upper, order, failure }) => {
      const f = fakeStorageEnv()
      const parts = Array.from({ length: n }, (_, i) => i + 1).filter((p) => !(failure.kind === 'partition' && p === failure.layer + 1))
      f.devices.addDisk('02/01', '/dev/vdb', parts.map((p) => `/dev/vdb${p}`))
      f.devices.addDisk('03/00', '/dev/vdc')
      const nameOf = (p: number) => new RegExp(`^kata-verity-vdb${p}-`)
      switch (failure.kind) {
        case 'dm': f.dm.failOn({ cmd: failure.cmd, name: nameOf(failure.layer + 1) }); break
        case 'mknod': f.nodes.failOn('mknod', new RegExp(`^/dev/mapper/kata-verity-vdb${failure.layer + 1}-`)); break
        case 'mount': f.mounter.failMount(`${T}/lower-${failure.layer}`); break
        case 'overlay': f.mounter.failMount(TARGET); break
        case 'upper': f.mounter.failMount(`${T}/upper`); break
        default: break
      }
      const storages = [...(upper ? [ext4Upper()] : []), ...order.map((p) => erofsLower(p, { verity: verity[p - 1]! }))]
      const state = new MultiLayerErofsState(f.env)
      const outcome = await state.addStorages(storages, 'c1').then((r) => r, (e: unknown) => e)
      const failureApplies =
        failure.kind === 'none' ? false
        : failure.kind === 'upper' ? upper
        : failure.kind === 'dm' || failure.kind === 'mknod' ? verity[failure.layer]!
        : true
      if (failureApplies) {
        expect(outcome).toBeInstanceOf(MultiLayerErofsError)
      } else {
        expect(outcome).not.toBeInstanceOf(Error)
        expect(f.dm.devices.size).toBe(verity.filter(Boolean).length)
        const report = await state.removeContainer('c1')
        expect(report.failures).toEqual([])
      }
      expect([...f.dm.devices.keys()]).toEqual([])
      expect([...f.nodes.nodes.keys()].filter((x) => x.startsWith('/dev/mapper/'))).toEqual([])
      expect([...f.mounter.mounts.keys()]).toEqual([])
      expect(f.nodes.under('/run')).toEqual([])
      expect(state.containerVerityDevices.size).toBe(0)
    }), { numRuns: 150 })
  })
})
