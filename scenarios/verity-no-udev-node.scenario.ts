import { scenario, expect } from '../harness/scenario.ts'
import { agentLogLines, buildLayerDisk, dmSnapshot, expectNothingLeft, findGuestDisk, multiLayerStorages, rootfsOci, type LayerFiles } from '../harness/guest-disks.ts'
import { testWithDisks } from '../harness/disk-test.ts'
import { guestRootfsMountPoint } from '../impl/runtime/resource/rootfs/storage.ts'

const LAYERS: LayerFiles[] = [{ 'hello.txt': 'hello\n' }]
const test = testWithDisks(async () => ({ layers: await buildLayerDisk(LAYERS, { verity: true }) }))
const T = { timeoutMs: 120_000 }
const AGENT = 'node /usr/lib/kataref/agent.mjs'

scenario(
  {
    name: 'verity-no-udev-node',
    upstream: 'kata-containers e900eae388 + c74bddddaf: no-udev DmOptions and mknod of /dev/mapper/<name> from DM_DEV_STATUS (src/libs/kata-types/src/dmverity.rs)',
    requires: ['qemu'],
  },
  () => {
    test('without udev, a dm device made by DM ioctls alone gets no /dev/mapper node, so mounting by that path fails', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { dev } = await findGuestDisk(guest, serial)
      // The guest has no udev at all.
      expect((await guest.debug.run('test -e /run/udev/control || pidof udevd systemd-udevd')).exitCode).not.toBe(0)
      const l = summary.layers[0]!
      const p = `${dev}${l.partition}`
      const off = l.verity!.hashoffset
      const blocks = off / 4096
      const table = `0 ${blocks * 8} verity 1 ${p} ${p} 4096 4096 ${blocks} ${blocks + 1} sha256 ${l.verity!.roothash} ${l.verity!.salt}`
      const made = await guest.debug.run(`${AGENT} dm-create kataref-raw-probe ${table}`, { timeoutMs: 60_000 })
      expect(made.exitCode, made.stdout).toBe(0)
      const majMin = made.stdout.trim().split('\n').pop()!
      try {
        // The kernel has the device (sysfs, and devtmpfs's /dev/dm-N) …
        const snap = await dmSnapshot(guest)
        const d = snap.dm.find((x) => x.name === 'kataref-raw-probe')
        expect(d?.majMin).toBe(majMin)
        expect((await guest.debug.run(`stat -c '%t:%T' /dev/${d!.dev}`)).stdout.trim()).toBe(majMin.split(':').map((n) => Number(n).toString(16)).join(':'))
        // … but nobody made /dev/mapper/<name>, not even after a while, and a mount by that path fails.
        await guest.debug.run('sleep 1')
        expect(snap.nodes).not.toContain('kataref-raw-probe')
        expect((await guest.debug.run('test -e /dev/mapper/kataref-raw-probe')).exitCode).not.toBe(0)
        const m = await guest.debug.run('mkdir -p /tmp/probe && mount -t erofs -o ro /dev/mapper/kataref-raw-probe /tmp/probe 2>&1')
        expect(m.exitCode).not.toBe(0)
        expect(m.stdout).toMatch(/No such file|can't find|not exist/i)
      } finally {
        await guest.debug.run(`${AGENT} dm-remove kataref-raw-probe; rmdir /tmp/probe`)
      }
      expect((await dmSnapshot(guest)).dm).toEqual([])
    })

    test('the agent makes /dev/mapper/<name> itself: a 0600 block node with the kernel\'s major:minor, mounted by that path; removed with the device', async ({ guest, disks }) => {
      const { summary, serial } = disks.layers
      const { pciPath } = await findGuestDisk(guest, serial)
      const cid = 'c-no-udev'
      const rootfs = guestRootfsMountPoint(cid)
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-no-udev' }, T)
      // Failpoints are off by default: this agent was not started with --failpoints, so the option is ignored.
      const storages = multiLayerStorages(summary, { cid, pciPath, extra: () => ['X-kataref.failpoint=mknod:0'] })
      await guest.agent.agent.createContainer({ containerId: cid, storages, OCI: rootfsOci(rootfs) }, T)
      expect((await agentLogLines(guest, /ignored: agent not started with --failpoints/)).length).toBe(1)
      const snap = await dmSnapshot(guest)
      expect(snap.dm).toHaveLength(1)
      const d = snap.dm[0]!
      expect(d.name).toMatch(/^kata-verity-vd[a-z]+1-off\d+-[0-9a-f]{32}$/)
      expect(snap.nodes).toEqual([d.name])
      const st = await guest.debug.run(`stat -c '%F %a %t:%T' /dev/mapper/${d.name}`)
      expect(st.stdout.trim()).toBe(`block special file 600 ${d.majMin.split(':').map((n) => Number(n).toString(16)).join(':')}`)
      expect(snap.mounts).toContain(`/run/kata-containers/${cid}/multi-layer/lower-0 erofs /dev/mapper/${d.name}`)
      expect((await guest.debug.run(`cat ${rootfs}/hello.txt`)).stdout).toBe('hello\n')
      await guest.agent.agent.removeContainer({ containerId: cid }, T)
      const left = await expectNothingLeft(guest, cid)
      expect(left.ok, left.details).toBe(true)
      await guest.agent.agent.destroySandbox({}, T)
    })
  },
)
