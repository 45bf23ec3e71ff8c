import { scenario, expect } from '../harness/scenario.ts'
import { buildLayerDisk, findGuestDisk, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'

const LAYERS: LayerFiles[] = [
  { 'layer.txt': 'layer 0\n', 'bin/run': { content: '#!/bin/sh\n', mode: 0o755 } },
  { 'layer.txt': 'layer 1\n', 'etc/conf': { content: 'x=1\n', mode: 0o640 } },
  { 'layer.txt': 'layer 2\n', 'big.bin': Buffer.alloc(40_000, 7).toString('latin1') },
]

const test = testWithDisks(async () => ({ layers: await buildLayerDisk(LAYERS, { verity: true }) }))

scenario(
  {
    name: 'gpt-vmdk-layers',
    upstream: 'kata-containers runtime-rs erofs_rootfs.rs + kata-types gpt_disk.rs: EROFS layers as GPT partitions of one VMDK disk (FLAT extents on the layer files, pad-{idx}.img), dm-verity sidecar → X-kata.dmverity.* options',
    requires: ['qemu'],
  },
  () => {
    test('the VMDK disk shows one GPT partition per layer at the planned LBAs, named erofs-<k>-s<n>', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev } = await findGuestDisk(guest, serial)
      const base = dev.slice('/dev/'.length)
      const parts = await guest.debug.run(`cd /sys/block/${base} && for p in ${base}[0-9]*; do echo "$p $(cat $p/partition) $(cat $p/start) $(cat $p/size) $(grep PARTNAME $p/uevent | cut -d= -f2)"; done`)
      expect(parts.stdout.trim().split('\n')).toEqual(summary.layers.map((l) => `${base}${l.partition} ${l.partition} ${l.startLba} ${l.endLba - l.startLba + 1} ${l.name}`))
      // The whole disk is as large as the descriptor says.
      expect(Number((await guest.debug.run(`cat /sys/block/${base}/size`)).stdout.trim())).toBe(summary.virtualSectors)
    })

    test('each partition mounts as EROFS and holds its own layer', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev } = await findGuestDisk(guest, serial)
      for (const l of summary.layers) {
        const mnt = `/tmp/gpt-p${l.partition}`
        const r = await guest.debug.run(`mkdir -p ${mnt} && mount -t erofs -o ro ${dev}${l.partition} ${mnt} && cat ${mnt}/layer.txt; grep " ${mnt} " /proc/mounts | cut -d' ' -f3; umount ${mnt}; rmdir ${mnt}`)
        expect(r.stdout).toBe(`layer ${l.partition - 1}\nerofs\n`)
      }
      expect((await guest.debug.run(`grep ${dev} /proc/mounts`)).stdout).toBe('')
    })

    test('veritysetup verify in the guest succeeds on every partition with the options the agent receives (superblock and no-superblock forms)', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev } = await findGuestDisk(guest, serial)
      for (const l of summary.layers) {
        const p = `${dev}${l.partition}`
        const opt = (k: string) => l.dmverityOptions.find((o) => o.startsWith(`X-kata.dmverity.${k}=`))!.split('=')[1]!
        const root = opt('roothash')
        const off = Number(opt('hashoffset'))
        expect(off).toBe(l.verity!.hashoffset)
        // Superblock form: veritysetup reads salt/sizes/algorithm from the v1 superblock at hashoffset.
        const sb = await guest.debug.run(`veritysetup verify ${p} ${p} ${root} --hash-offset=${off}`, { timeoutMs: 60_000 })
        expect(sb.exitCode, sb.stdout).toBe(0)
        // No-superblock form with exactly the agent's table parameters (hash_start = offset/4096 + 1).
        const ns = await guest.debug.run(`veritysetup verify --no-superblock --format=1 --hash=sha256 --data-block-size=4096 --hash-block-size=4096 --data-blocks=${off / 4096} --hash-offset=${off + 4096} --salt=${opt('salt')} ${p} ${p} ${root}`, { timeoutMs: 60_000 })
        expect(ns.exitCode, ns.stdout).toBe(0)
        // A wrong root hash is refused.
        const bad = `${root.slice(0, -1)}${root.endsWith('0') ? '1' : '0'}`
        const wrong = await guest.debug.run(`veritysetup verify ${p} ${p} ${bad} --hash-offset=${off}`, { timeoutMs: 60_000 })
        expect(wrong.exitCode).not.toBe(0)
      }
    })
  },
)
