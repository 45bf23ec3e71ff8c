import { scenario, expect } from '../harness/scenario.ts'
import { agentLogLines, buildLayerDisk, dmSnapshot, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

const LAYERS: LayerFiles[] = Array.from({ length: 8 }, (_, i) => ({ [`l${i}.txt`]: `layer ${i}\n`, 'who.txt': `top is ${i}\n` }))
// The agent honours X-kataref.failpoint=<step>:<layer> only with --failpoints (kernel word below).
const test = testWithDisks(async () => ({ layers: await buildLayerDisk(LAYERS, { verity: true }) }), { kernelParams: ['kataref.agent_failpoints=1'] })
const T = { timeoutMs: 120_000 }

// Each step fails on a different layer; `overlay` fails after all 8 layers are up.
const CASES: { step: string; layer: number; code: number }[] = [
  { step: 'partition-wait', layer: 7, code: 4 },
  { step: 'create', layer: 1, code: 13 },
  { step: 'table-load', layer: 2, code: 13 },
  { step: 'resume', layer: 3, code: 13 },
  { step: 'status', layer: 0, code: 13 },
  { step: 'mknod', layer: 4, code: 13 },
  { step: 'mount', layer: 5, code: 13 },
  { step: 'overlay', layer: 0, code: 13 },
]

scenario(
  {
    name: 'concurrent-mount-rollback',
    upstream: 'kata-containers 274a904bf7: concurrent multi-layer EROFS mount with rollback on partial failure (src/agent/src/storage/multi_layer_erofs.rs)',
    gap: {
      upstream: 'a failing layer leaks its own verity device (G1), a failed TABLE_LOAD/resume/STATUS/mknod leaves the DM device (G2), an overlay failure undoes nothing (G3)',
      kataref: 'every completed step of every layer and of the group is undone: nothing is left after any failure',
    },
    requires: ['qemu'],
  },
  () => {
    for (const c of CASES) {
      test(`8 verity layers, ${c.step} fails${c.step === 'overlay' ? '' : ` on layer ${c.layer}`}: typed error naming it; the other layers were mounted concurrently and are all undone`, async ({ guest, disks }) => {
        const { summary, serial } = disks.layers
        const { pciPath } = await findGuestDisk(guest, serial)
        const cid = `c-fail-${c.step}`
        // One sandbox for the whole file (the first test creates it).
        if ((await guest.debug.run('test -d /run/kata-containers/sandbox')).exitCode !== 0) await guest.agent.agent.createSandbox({ sandboxId: 'sb-rollback' }, T)
        const created0 = (await agentLogLines(guest, /^created dm-verity device$/)).length
        const destroyed0 = (await agentLogLines(guest, /^destroyed dm-verity device$/)).length
        const storages = multiLayerStorages(summary, { cid, pciPath, extra: (i) => (i === 0 ? [`X-kataref.failpoint=${c.step}:${c.layer}`] : []) })
        const err = await guest.agent.agent.createContainer({ containerId: cid, storages, OCI: rootfsOci(guestRootfsMountPoint(cid)) }, T)
          .then(() => undefined, (e: unknown) => e as { code: number; message: string })
        expect(err, 'CreateContainer must fail').toBeDefined()
        expect(err!.code, err!.message).toBe(c.code)
        if (c.step === 'overlay') {
          expect(err!.message).toMatch(/failpoint: mount overlay .*\[step overlay\]$/)
        } else {
          expect(err!.message).toMatch(/^failed to mount one or more EROFS layers concurrently: /)
          expect(err!.message).toContain(`multi-layer erofs layer ${c.layer} (blk ${pciPath}): ${c.step} failed`)
          expect(err!.message).toMatch(new RegExp(`\\[layer ${c.layer}, step ${c.step}\\]$`))
        }
        // The other layers really were set up (and each one undone): created == destroyed.
        const created = (await agentLogLines(guest, /^created dm-verity device$/)).length - created0
        const destroyed = (await agentLogLines(guest, /^destroyed dm-verity device$/)).length - destroyed0
        expect(created).toBeGreaterThanOrEqual(c.step === 'overlay' ? 8 : 6)
        expect(destroyed).toBe(created)
        const left = await expectNothingLeft(guest, cid)
        expect(left.ok, left.details).toBe(true)
      })
    }

    test('afterwards the same 8 layers mount (lower-0 = partition 1 on top) and tear down cleanly', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-ok'
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createContainer({ containerId: cid, storages: multiLayerStorages(summary, { cid, pciPath }), OCI: rootfsOci(rootfs) }, T)
      expect((await guest.debug.run(`cat ${rootfs}/who.txt ${rootfs}/l7.txt`)).stdout).toBe('top is 0\nlayer 7\n')
      expect((await dmSnapshot(guest)).dm).toHaveLength(8)
      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })
  },
)
