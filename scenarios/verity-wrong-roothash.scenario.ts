import { scenario, expect } from '../harness/scenario.ts'
import { buildLayerDisk, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

const LAYERS: LayerFiles[] = [{ 'a.txt': 'a\n' }, { 'b.txt': 'b\n' }, { 'c.txt': 'c\n' }]
const test = testWithDisks(async () => ({ layers: await buildLayerDisk(LAYERS, { verity: true }) }))
const T = { timeoutMs: 120_000 }
const flip = (h: string) => `${h.slice(0, -1)}${h.endsWith('0') ? '1' : '0'}`

scenario(
  {
    name: 'verity-wrong-roothash',
    upstream: 'kata-containers 51e8310ef3 + 274a904bf7: a dm-verity layer whose root hash does not match fails the group (src/agent/src/storage/multi_layer_erofs.rs); kataref also undoes the failed layer\'s own device (G1)',
    gap: { upstream: 'the failing layer leaks its dm device and node (G1); successful layers are rolled back', kataref: 'every layer, failed or not, is undone: no dm device, node, mount or dir left' },
    requires: ['qemu'],
  },
  () => {
    test('a wrong root hash on layer 1 fails CreateContainer with an error naming layer 1; nothing is left; the right hash then works', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-wrong-root'
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-wrong-root' }, T)
      const storages = multiLayerStorages(summary, {
        cid, pciPath,
        map: (i, opts) => i === 1 ? opts.map((o) => o.startsWith('X-kata.dmverity.roothash=') ? `X-kata.dmverity.roothash=${flip(o.split('=')[1]!)}` : o) : opts,
      })
      const err = await guest.agent.agent.createContainer({ containerId: cid, storages, OCI: rootfsOci(rootfs) }, T).then(() => undefined, (e: unknown) => e as { code: number; message: string })
      expect(err, 'CreateContainer must fail').toBeDefined()
      expect(err!.message).toMatch(/failed to mount one or more EROFS layers concurrently/)
      expect(err!.message).toMatch(/multi-layer erofs layer 1 \(blk /)
      expect(err!.message).toMatch(/\[layer 1, step mount\]/)
      expect(err!.code).toBe(13)
      // The kernel saw the mismatch (dm-verity logs the corrupted block of the failing device).
      expect((await guest.debug.run('dmesg | grep -c "verity.*\\(metadata\\|data\\) block.*is corrupted"')).stdout.trim()).not.toBe('0')
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)

      // No stale state: the same container with the right hashes mounts, and goes away again.
      await guest.agent.agent.createContainer({ containerId: cid, storages: multiLayerStorages(summary, { cid, pciPath }), OCI: rootfsOci(rootfs) }, T)
      expect((await guest.debug.run(`cat ${rootfs}/a.txt ${rootfs}/b.txt ${rootfs}/c.txt`)).stdout).toBe('a\nb\nc\n')
      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const after = await expectNothingLeft(guest, cid)
      expect(after.ok, after.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })
  },
)
