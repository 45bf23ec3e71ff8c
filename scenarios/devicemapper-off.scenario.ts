import { scenario, expect } from '../harness/scenario.ts'
import { buildLayerDisk, dmSnapshot, dmStatus, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

const LAYERS: LayerFiles[] = [{ 'top.txt': 'top\n', 'same.txt': 'top\n' }, { 'base.txt': 'base\n', 'same.txt': 'base\n' }]
// The agent runs as if built without the devicemapper feature (KATAREF_USE_DEVMAPPER=0).
const test = testWithDisks(async () => ({ layers: await buildLayerDisk(LAYERS, { verity: true }) }), { kernelParams: ['kataref.use_devmapper=0'] })
const T = { timeoutMs: 120_000 }

scenario(
  {
    name: 'devicemapper-off',
    upstream: 'kata-containers b2d0e5b712 + c74bddddaf: agent without the devicemapper feature (USE_DEVMAPPER=no) fails dm-verity layers closed, mounts plain layers (src/agent/Cargo.toml, multi_layer_erofs.rs)',
    requires: ['qemu'],
  },
  () => {
    test('verity layers fail clearly (UNIMPLEMENTED, "not compiled in"), with no DM call and nothing left', async ({ guest, disks }) => {
      expect((await guest.debug.run('tr "\\0" "\\n" < /proc/$(pidof node)/environ | grep KATAREF_USE_DEVMAPPER')).stdout.trim()).toBe('KATAREF_USE_DEVMAPPER=0')
      const { summary, serial } = disks.layers
      const { pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-dm-off'
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-dm-off' }, T)
      const err = await guest.agent.agent.createContainer({ containerId: cid, storages: multiLayerStorages(summary, { cid, pciPath }), OCI: rootfsOci(guestRootfsMountPoint(cid)) }, T)
        .then(() => undefined, (e: unknown) => e as { code: number; message: string })
      expect(err, 'CreateContainer must fail').toBeDefined()
      expect(err!.code).toBe(12)
      expect(err!.message).toMatch(/dm-verity support not compiled in/)
      expect(err!.message).toMatch(/\[layer 0, step verity-disabled\]/)
      // Never a silent unverified mount, and no device-mapper device was ever made.
      expect(await dmStatus(guest)).toEqual([])
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)
    })

    test('the same partitions without the verity marker mount directly from /dev/vdXN', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev, pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-dm-off-plain'
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createContainer({ containerId: cid, storages: multiLayerStorages(summary, { cid, pciPath, verity: false }), OCI: rootfsOci(rootfs) }, T)
      expect((await guest.debug.run(`cat ${rootfs}/top.txt ${rootfs}/base.txt ${rootfs}/same.txt`)).stdout).toBe('top\nbase\ntop\n')
      const snap = await dmSnapshot(guest)
      expect(snap.dm).toEqual([])
      expect(snap.mounts).toEqual(expect.arrayContaining([
        `/run/kata-containers/${cid}/multi-layer/lower-0 erofs ${dev}1`,
        `/run/kata-containers/${cid}/multi-layer/lower-1 erofs ${dev}2`,
      ]))
      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })
  },
)
