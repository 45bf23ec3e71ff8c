import { scenario, expect } from '../harness/scenario.ts'
import { agentLogLines, buildLayerDisk, dmSnapshot, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

// Partitions 1-3: container A, 4-6: container B, 7: a sandbox-level group.
const LAYERS: LayerFiles[] = [0, 1, 2, 3, 4, 5, 6].map((i) => ({ [`l${i}.txt`]: `layer ${i}\n` }))
const test = testWithDisks(async () => ({ layers: await buildLayerDisk(LAYERS, { verity: true }) }))
const T = { timeoutMs: 120_000 }
const SANDBOX_TARGET = '/run/kata-containers/sandbox/ml-rootfs'

scenario(
  {
    name: 'verity-teardown',
    upstream: 'kata-containers 963ba6c6cd: per-container verity_devices, destroyed in reverse with deferred remove by remove_container_resources (src/agent/src/rpc.rs, sandbox.rs container_verity_devices)',
    gap: { upstream: 'sandbox-level (CreateSandbox) verity devices are never destroyed (G5)', kataref: 'DestroySandbox destroys them, and sweeps any kata-verity-* device left' },
    requires: ['qemu'],
  },
  () => {
    test('two containers; RemoveContainer of the first removes only its devices, last layer first; DestroySandbox removes the rest, sandbox-level included', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev, pciPath } = await findGuestDisk(guest, serial)
      const base = dev.slice('/dev/'.length)
      const nameOf = (i: number) => { const l = summary.layers[i]!; return `kata-verity-${base}${l.partition}-off${l.verity!.hashoffset}-${l.verity!.roothash.slice(0, 32)}` }
      const sandboxStorage = multiLayerStorages(summary, { cid: 'unused', pciPath, layers: [6] }).map((s) => ({ ...s, mountPoint: SANDBOX_TARGET }))
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-teardown', storages: sandboxStorage }, T)
      const [a, b] = ['c-a', 'c-b']
      await guest.agent.agent.createContainer({ containerId: a, storages: multiLayerStorages(summary, { cid: a, pciPath, layers: [0, 1, 2] }), OCI: rootfsOci(guestRootfsMountPoint(a)) }, T)
      await guest.agent.agent.createContainer({ containerId: b, storages: multiLayerStorages(summary, { cid: b, pciPath, layers: [3, 4, 5] }), OCI: rootfsOci(guestRootfsMountPoint(b)) }, T)
      const all = await dmSnapshot(guest)
      expect(all.dm.map((d) => d.name).sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map(nameOf).sort())
      expect(all.nodes.sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map(nameOf).sort())
      expect((await guest.debug.run(`cat ${SANDBOX_TARGET}/l6.txt ${guestRootfsMountPoint(a)}/l0.txt ${guestRootfsMountPoint(b)}/l5.txt`)).stdout).toBe('layer 6\nlayer 0\nlayer 5\n')

      const before = (await agentLogLines(guest, /^destroyed dm-verity device$/)).length
      await guest.agent.agent.removeContainer({ containerId: a }, T)
      // Only A's devices went, in reverse layer order (agent log, in the order the ioctls were made).
      const destroyed = (await agentLogLines(guest, /^destroyed dm-verity device$/)).slice(before).map((j) => j.name)
      expect(destroyed).toEqual([2, 1, 0].map(nameOf))
      const afterA = await dmSnapshot(guest)
      expect(afterA.dm.map((d) => d.name).sort()).toEqual([3, 4, 5, 6].map(nameOf).sort())
      expect(afterA.nodes.sort()).toEqual([3, 4, 5, 6].map(nameOf).sort())
      const leftA = JSON.parse((await expectNothingLeft(guest, a)).details) as { dirs: string[] }
      expect(leftA.dirs).toEqual([])
      expect(afterA.mounts.filter((m) => m.includes(`/${a}/`))).toEqual([])
      // B is untouched and still readable.
      expect((await guest.debug.run(`cat ${guestRootfsMountPoint(b)}/l3.txt ${guestRootfsMountPoint(b)}/l4.txt`)).stdout).toBe('layer 3\nlayer 4\n')

      const before2 = (await agentLogLines(guest, /^destroyed dm-verity device$/)).length
      await guest.agent.agent.destroySandbox({}, T)
      const destroyed2 = (await agentLogLines(guest, /^destroyed dm-verity device$/)).slice(before2).map((j) => j.name)
      // B's in reverse, then the sandbox-level group's.
      expect(destroyed2).toEqual([5, 4, 3, 6].map(nameOf))
      const end = await dmSnapshot(guest)
      expect(end).toEqual({ dm: [], nodes: [], mounts: [] })
      expect((await guest.debug.run(`ls -d /run/kata-containers/${a} /run/kata-containers/${b} /run/kata-containers/sandbox 2>/dev/null`)).stdout).toBe('')
    })
  },
)
