import { createHash, randomBytes, randomInt } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { scenario, expect } from '../harness/scenario.ts'
import { buildLayerDisk, dmStatus, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

const B = 4096
const BLOCKS = [64, 64, 32]
const CONTENT = BLOCKS.map((n) => randomBytes(n * B))
// Layers 0 and 1 get 10 tampered data blocks each (20 in all); layer 2 stays intact.
const LAYERS: LayerFiles[] = CONTENT.map((c, i) => ({ [`d${i}.bin`]: { content: c }, [`ok${i}.txt`]: `intact ${i}\n` }))
const tampered: { layer: number; block: number }[] = []
for (const layer of [0, 1]) {
  const picked = new Set<number>()
  while (picked.size < 10) picked.add(randomInt(BLOCKS[layer]!))
  for (const block of [...picked].sort((a, b) => a - b)) tampered.push({ layer, block })
}
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex')

const test = testWithDisks(async () => ({
  layers: await buildLayerDisk(LAYERS, {
    verity: true,
    // After the hash trees were computed: flip one byte at a random offset in each chosen data block.
    beforeAttach: async (summary) => {
      for (const t of tampered) {
        const path = summary.layers[t.layer]!.path
        const image = await readFile(path)
        const start = image.indexOf(CONTENT[t.layer]!.subarray(0, 64))
        if (start < 0 || start % B !== 0) throw new Error(`d${t.layer}.bin not found block-aligned in ${path} (at ${start})`)
        const at = start + t.block * B + randomInt(B)
        const fh = await open(path, 'r+')
        try {
          await fh.write(Buffer.from([image[at]! ^ 0xff]), 0, 1, at)
        } finally {
          await fh.close()
        }
      }
    },
  }),
}))
const T = { timeoutMs: 120_000 }

scenario(
  {
    name: 'verity-tamper',
    upstream: 'kata-containers 51e8310ef3: EROFS layers mounted through dm-verity, so a modified data block on the host reads as EIO in the guest (src/agent/src/storage/multi_layer_erofs.rs, kernel dm-verity)',
    requires: ['qemu'],
  },
  () => {
    test('20 random tampered data blocks across two layers: 20/20 read as EIO; every other block, file and layer reads fine', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-tamper'
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-tamper' }, T)
      // The layers mount: superblocks and metadata blocks are intact.
      await guest.agent.agent.createContainer({ containerId: cid, storages: multiLayerStorages(summary, { cid, pciPath }), OCI: rootfsOci(rootfs) }, T)
      // No readahead, so each read touches exactly its own block.
      await guest.debug.run('for q in /sys/block/dm-*/queue/read_ahead_kb; do echo 0 > $q; done')
      expect((await guest.debug.run(`cat ${rootfs}/ok0.txt ${rootfs}/ok1.txt ${rootfs}/ok2.txt`)).stdout).toBe('intact 0\nintact 1\nintact 2\n')

      const seen: { layer: number; block: number; ok: boolean; md5: string }[] = []
      for (const [layer, n] of BLOCKS.entries()) {
        const r = await guest.debug.run(
          `i=0; while [ $i -lt ${n} ]; do s=$(dd if=${rootfs}/d${layer}.bin bs=${B} skip=$i count=1 2>/dev/null | md5sum | cut -d' ' -f1); ` +
          `if dd if=${rootfs}/d${layer}.bin bs=${B} skip=$i count=1 of=/dev/null 2>/dev/null; then echo "$i ok $s"; else echo "$i eio -"; fi; i=$((i+1)); done`,
          { timeoutMs: 120_000 })
        for (const line of r.stdout.trim().split('\n')) {
          const [b, st, sum] = line.split(' ')
          seen.push({ layer, block: Number(b), ok: st === 'ok', md5: sum! })
        }
      }
      // Reading a tampered file as a whole fails with EIO (dm-verity's answer), an intact one reads fully.
      const whole = await guest.debug.run(`cat ${rootfs}/d0.bin 2>&1 >/dev/null; echo "rc=$?"; cat ${rootfs}/d2.bin | md5sum`, { timeoutMs: 60_000 })
      expect(whole.stdout).toMatch(/Input\/output error/)
      expect(whole.stdout).toMatch(/rc=1/)
      expect(whole.stdout).toContain(md5(CONTENT[2]!))
      const detected = seen.filter((s) => !s.ok).map(({ layer, block }) => ({ layer, block }))
      expect(detected, `tampered: ${JSON.stringify(tampered)}`).toEqual(tampered)
      console.log(`verity-tamper: ${detected.length}/${tampered.length} tampered blocks detected; ${seen.filter((s) => s.ok).length} intact blocks read back`)
      // Every intact block reads back exactly the original bytes.
      for (const s of seen.filter((x) => x.ok)) expect(s.md5, `layer ${s.layer} block ${s.block}`).toBe(md5(CONTENT[s.layer]!.subarray(s.block * B, (s.block + 1) * B)))
      // The kernel marks the tampered layers' targets corrupted (C), the intact one stays verified (V).
      const status = await dmStatus(guest)
      const byPart = (i: number) => status.find((d) => d.name.includes(`${summary.layers[i]!.partition}-off`))!.status[0]
      expect([0, 1, 2].map(byPart)).toEqual([expect.stringMatching(/ verity C$/), expect.stringMatching(/ verity C$/), expect.stringMatching(/ verity V$/)])

      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })
  },
)
