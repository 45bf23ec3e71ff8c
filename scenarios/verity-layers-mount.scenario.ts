import { scenario, expect } from '../harness/scenario.ts'
import { buildLayerDisk, buildRuntimeRootfsDisk, dmSnapshot, dmStatus, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

// Three layers; partition 1 is the top-most overlay layer (lower-0).
const LAYERS: LayerFiles[] = [
  { 'shared.txt': 'from top\n', 'top.txt': 'top\n', 'bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o755 } },
  { 'shared.txt': 'from mid\n', 'mid': { dir: true, mode: 0o750 }, 'mid/secret': { content: 'secret\n', mode: 0o600 } },
  { 'shared.txt': 'from base\n', 'base.txt': 'base\n', 'var/empty': { dir: true, mode: 0o711 }, 'etc/motd': { content: 'motd\n', mode: 0o444 } },
]

const RUNTIME_LAYERS: LayerFiles[] = [{ 'app.txt': 'app v2\n' }, { 'app.txt': 'app v1\n', 'lib/base.so': { content: 'ELF', mode: 0o755 } }]
const test = testWithDisks(async () => ({
  layers: await buildLayerDisk(LAYERS, { verity: true }),
  // A second disk made the runtime's way (ErofsRootfs from containerd-style mounts + dm-verity sidecars).
  runtime: await buildRuntimeRootfsDisk(RUNTIME_LAYERS, 'c-runtime'),
}))
const T = { timeoutMs: 120_000 }

scenario(
  {
    name: 'verity-layers-mount',
    upstream: 'kata-containers 51e8310ef3 + 274a904bf7 + b2d0e5b712: dm-verity protected multi-layer EROFS lowers mounted concurrently into an overlay rootfs (src/agent/src/storage/multi_layer_erofs.rs, kata-types dmverity.rs)',
    requires: ['qemu'],
  },
  () => {
    test('3 verity layers of a GPT+VMDK disk: merged rootfs has the right contents and modes; each layer is a verity device in state V', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev, pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-verity-mount'
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-verity-mount' }, T)
      await guest.agent.agent.createContainer({ containerId: cid, storages: multiLayerStorages(summary, { cid, pciPath }), OCI: rootfsOci(rootfs) }, T)

      // Contents: the top layer wins, lower-only files show through.
      const cat = await guest.debug.run(`cd ${rootfs} && cat shared.txt top.txt base.txt mid/secret etc/motd && ./bin/tool`)
      expect(cat.exitCode).toBe(0)
      expect(cat.stdout).toBe('from top\ntop\nbase\nsecret\nmotd\ntool\n')
      const modes = await guest.debug.run(`cd ${rootfs} && stat -c '%n %a %u' bin/tool mid mid/secret var/empty etc/motd top.txt`)
      expect(modes.stdout.trim().split('\n')).toEqual(['bin/tool 755 0', 'mid 750 0', 'mid/secret 600 0', 'var/empty 711 0', 'etc/motd 444 0', 'top.txt 644 0'])
      // The rootfs is writable (overlay upper on the run-backed dir); the layers are not.
      expect((await guest.debug.run(`echo w > ${rootfs}/new.txt && cat ${rootfs}/new.txt`)).stdout).toBe('w\n')

      // Witness: one dm device per layer, its /dev/mapper node has the kernel's major:minor, mounted as erofs.
      const snap = await dmSnapshot(guest)
      const part = (n: number) => `${dev.slice('/dev/'.length)}${n || ''}`
      expect(snap.dm.map((d) => d.name).sort()).toEqual(summary.layers.map((l) => `kata-verity-${part(l.partition)}-off${l.verity!.hashoffset}-${l.verity!.roothash.slice(0, 32)}`).sort())
      for (const d of snap.dm) {
        const node = await guest.debug.run(`stat -c '%t %T %F' /dev/mapper/${d.name}`)
        const [maj, min] = d.majMin.split(':').map(Number)
        expect(node.stdout.trim()).toBe(`${maj!.toString(16)} ${min!.toString(16)} block special file`)
        expect(snap.mounts).toContain(`${'/run/kata-containers/' + cid + '/multi-layer/lower-' + summary.layers.findIndex((l) => d.name.startsWith(`kata-verity-${part(l.partition)}-`))} erofs /dev/mapper/${d.name}`)
      }
      expect(snap.mounts.some((m) => m.startsWith(`${rootfs} overlay`))).toBe(true)
      // Kernel's own view (DM_TABLE_STATUS): verified, table built from the partition.
      const status = await dmStatus(guest)
      expect(status).toHaveLength(3)
      for (const l of summary.layers) {
        const s = status.find((x) => x.name.startsWith(`kata-verity-${part(l.partition)}-`))!
        expect(s.status).toEqual([expect.stringMatching(/^0 \d+ verity V$/)])
        // The table the kernel holds is exactly §8's: data = hash device = the partition (as major:minor),
        // blocknum = hashoffset/4096, hash_start = blocknum + 1 (v1 superblock), the agent's salt.
        const majMin = (await guest.debug.run(`cat /sys/block/${part(0)}/${part(l.partition)}/dev`)).stdout.trim()
        const n = l.verity!.hashoffset / 4096
        expect(s.table).toEqual([`0 ${n * 8} verity 1 ${majMin} ${majMin} 4096 4096 ${n} ${n + 1} sha256 ${l.verity!.roothash} ${l.verity!.salt}`])
      }
      // veritysetup (libdevmapper, independent of our ioctl code) sees it active and mounted
      // (its type is n/a: the device has no CRYPT-VERITY uuid, as upstream's devices have none).
      const vs = await guest.debug.run(`veritysetup status ${snap.dm[0]!.name}`)
      expect(vs.stdout).toMatch(/is active and is in use/)

      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const after = await expectNothingLeft(guest, cid)
      expect(after.ok, after.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })

    test('the runtime\'s own Storage entries (ErofsRootfs, host spec §12) for a 2-layer verity rootfs mount in the guest, mkdir directive included', async ({ guest, disks }) => {
      const { cid, serial } = disks.runtime
      const { pciPath } = await findGuestDisk(guest, serial)
      const storages = disks.runtime.storages(pciPath)
      expect(storages.map((s) => s.options.slice(0, 4))).toEqual([1, 2].map((n) => ['X-kata.overlay-lower', 'X-kata.multi-layer=true', 'X-kata.gpt-partitioned=true', `X-kata.partition-number=${n}`]))
      expect(storages[0]!.options).toContain('X-kata.mkdir.path={{ mount 0 }}/upper/etc/created:0755')
      expect(storages.every((s) => s.options.includes('X-kata.dmverity-enabled=true'))).toBe(true)
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-runtime' }, T)
      await guest.agent.agent.createContainer({ containerId: cid, storages, OCI: rootfsOci(rootfs) }, T)
      expect((await guest.debug.run(`cat ${rootfs}/app.txt ${rootfs}/lib/base.so; echo; test -d ${rootfs}/etc/created && echo dir`)).stdout).toBe('app v2\nELF\ndir\n')
      expect((await dmStatus(guest)).map((d) => d.status[0])).toEqual([expect.stringMatching(/ verity V$/), expect.stringMatching(/ verity V$/)])
      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })
  },
)
