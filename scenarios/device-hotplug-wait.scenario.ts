import { scenario, test as base, expect } from '../harness/scenario.ts'
import { hotplugBlockDevice } from '../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'
import { openHotplug, virtioBlk } from './_support/hotplug.ts'
import { busyboxRootfs, ociSpec, run, sh, T } from './_support/containers.ts'

// One hot-plug bridge (pci-bridge-0 at slot 2, as runtime-rs lays it out) and a hotplug timeout that
// leaves room for a TCG hotplug (the agent reads agent.hotplug_timeout from its kernel command line).
const test = base.extend({ guestOptions: [async ({}, use) => use({ pciBridges: 1, kernelParams: ['agent.hotplug_timeout=10'] }), { scope: 'file' }] })

const blkDevice = (pciPath: string) => ({ id: pciPath, type: 'blk', vmPath: '', containerPath: '/dev/xda', options: [] })
const withDevice = (spec: ReturnType<typeof ociSpec>) => ({ ...spec, Linux: { ...spec.Linux, Devices: [{ Path: '/dev/xda', Type: 'b', Major: 0n, Minor: 0n, FileMode: 0o660, UID: 0, GID: 0 }] } })

scenario(
  {
    name: 'device-hotplug-wait',
    upstream:
      'kata-containers agent device handling (src/agent/src/device/block_device_handler.rs, uevent.rs, 736e07d18e): CreateContainer with a virtio-blk PCI device waits for its uevent, then the container gets the node with the guest major/minor',
    gap: {
      upstream: 'uevents from a NETLINK_KOBJECT_UEVENT socket (group 1); PCI regexes built without escaping',
      kataref: 'uevents synthesised from sysfs (/sys/class/block, /sys/class/net, /sys/devices/virtual/vfio) polled every 50 ms while a waiter exists; escaped regexes (same results on well-formed paths)',
    },
    requires: ['qemu'],
  },
  () => {
    test('CreateContainer waits while the disk is hot-added over QMP, then the container reads it at /dev/xda', async ({ guest }) => {
      const s = await openHotplug(guest)
      try {
        const rootfs = await busyboxRootfs(guest, 'ctr-hp')
        let settled = false
        const creating = guest.agent.agent
          .createContainer({ containerId: 'ctr-hp', execId: 'ctr-hp', devices: [blkDevice('02/01')], OCI: withDevice(ociSpec(rootfs, ['sleep', '1000'])) }, T)
          .finally(() => (settled = true))
        // The agent is waiting: no container yet, the disk is not there.
        await new Promise((r) => setTimeout(r, 1500))
        expect(settled).toBe(false)
        expect((await sh(guest, 'test -e /sys/fs/cgroup/ctr-hp && echo yes || echo no; ls /sys/block | grep -c vdb || true')).stdout.trim()).toBe('no\n0')

        const disk = s.disk('hp0.raw', 'KATAREF-HOTPLUG-WAIT')
        const res = await hotplugBlockDevice(s.ctx, virtioBlk(0, disk))
        expect(res).toEqual({ pciPath: '02/01' })
        await creating
        await guest.agent.agent.startContainer({ containerId: 'ctr-hp' }, T)

        const devnum = (await sh(guest, 'cat /sys/block/vdb/dev; readlink -f /sys/block/vdb')).stdout.trim().split('\n')
        expect(devnum[1]).toMatch(/\/devices\/pci0000:00\/0000:00:02\.0\/0000:01:01\.0\/virtio\d+\/block\/vdb$/)
        const r = await run(guest, 'ctr-hp', 'read', ['sh', '-c', 'stat -c "%t:%T %F %a" /dev/xda; head -c 20 /dev/xda'])
        expect(r.status).toBe(0)
        const [maj, min] = devnum[0]!.split(':').map(Number)
        expect(r.out).toBe(`${maj!.toString(16)}:${min!.toString(16)} block special file 660\nKATAREF-HOTPLUG-WAIT`)
      } finally {
        s.close()
      }
    })

    test('a device already present (cold or earlier hotplug) resolves at once; an absent one times out with the upstream message and nothing is created', async ({ guest }) => {
      const rootfs = await busyboxRootfs(guest, 'ctr-hp2')
      const t0 = Date.now()
      await guest.agent.agent.createContainer({ containerId: 'ctr-hp2', execId: 'ctr-hp2', devices: [blkDevice('02/01')], OCI: withDevice(ociSpec(rootfs, ['true'])) }, T)
      expect(Date.now() - t0).toBeLessThan(5_000)
      await guest.agent.agent.removeContainer({ containerId: 'ctr-hp2', timeout: 10 }, T)

      const rootfs3 = await busyboxRootfs(guest, 'ctr-hp3')
      const t1 = Date.now()
      await expect(
        guest.agent.agent.createContainer({ containerId: 'ctr-hp3', execId: 'ctr-hp3', devices: [blkDevice('02/05')], OCI: withDevice(ociSpec(rootfs3, ['true'])) }, T),
      ).rejects.toMatchObject({ code: 4, message: expect.stringContaining('Timeout after 10s waiting for uevent blk pci /devices/pci0000:00/0000:00:02.0/0000:01:05.0') })
      expect(Date.now() - t1).toBeGreaterThanOrEqual(9_000)
      expect((await sh(guest, 'test -e /sys/fs/cgroup/ctr-hp3 && echo yes || echo no')).stdout.trim()).toBe('no')
      await expect(guest.agent.agent.startContainer({ containerId: 'ctr-hp3' }, T)).rejects.toMatchObject({ code: 5 })
    })
  },
)
