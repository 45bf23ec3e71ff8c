import { describe, expect, test } from 'vitest'
import { updateSpecDevices, type SpecLike } from './spec-update.ts'

const info = (major: number, minor: number) => ({ info: { type: 'b' as const, major, minor, path: '/dev/vdb' } })

describe('update_spec_devices (spec §3)', () => {
  test('devices get guest numbers; matching cgroup rules (type, host major, host minor) are rewritten', () => {
    const spec: SpecLike = {
      Linux: {
        Devices: [
          { Path: '/dev/xda', Type: 'b', Major: 8n, Minor: 0n },
          { Path: '/dev/other', Type: 'c', Major: 8n, Minor: 0n },
        ],
        Resources: {
          Devices: [
            { Allow: true, Type: 'b', Major: 8n, Minor: 0n, Access: 'rwm' },
            { Allow: true, Type: 'c', Major: 8n, Minor: 0n, Access: 'rwm' },
          ],
        },
      },
    }
    updateSpecDevices(spec, new Map([['/dev/xda', info(254, 16)]]))
    expect(spec.Linux!.Devices[0]).toMatchObject({ Major: 254n, Minor: 16n })
    expect(spec.Linux!.Devices[1]).toMatchObject({ Major: 8n, Minor: 0n })
    expect(spec.Linux!.Resources!.Devices.map((r) => [r.Type, r.Major, r.Minor])).toEqual([
      ['b', 254n, 16n],
      ['c', 8n, 0n],
    ])
  })
  test('an update for a path not in the spec → "Missing devices in OCI spec"; two for one host device → error', () => {
    const spec: SpecLike = { Linux: { Devices: [{ Path: '/dev/a', Type: 'b', Major: 8n, Minor: 0n }, { Path: '/dev/b', Type: 'b', Major: 8n, Minor: 0n }] } }
    expect(() => updateSpecDevices(spec, new Map([['/dev/zz', info(1, 1)]]))).toThrow(/Missing devices in OCI spec/)
    expect(() => updateSpecDevices(spec, new Map([['/dev/a', info(1, 1)], ['/dev/b', info(1, 2)]]))).toThrow(/Conflicting/)
  })
})
