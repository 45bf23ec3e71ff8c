import { scenario, test, expect } from '../harness/scenario.ts'
import { busyboxRootfs, cgroupProcs, exec, nsInitPid, ociSpec, readAll, run, sh, T } from './_support/containers.ts'

const CID = 'ctr-life'

scenario(
  {
    name: 'container-lifecycle',
    upstream:
      'kata-containers agent: CreateContainer/StartContainer/ExecProcess/WaitProcess/ReadStdout/WriteStdin/CloseStdin/RemoveContainer (src/agent/src/rpc.rs, rustjail container.rs) — processes started without runc',
    gap: {
      upstream: 'rustjail forks/clones the container process inside the agent (runc-like): capabilities, rlimits, seccomp, no_new_privs, additional gids, terminals applied',
      kataref:
        'a gated busybox launcher (unshare -m -u -i -p -f, nsenter -r/-w/-S/-G) placed in the cgroup before user code; namespaces, /proc, minimal /dev, binds, hostname, chroot, cwd, uid/gid and exact env are applied; capabilities, rlimits, seccomp, no_new_privs, additional gids and terminals are not yet',
    },
    requires: ['qemu'],
  },
  () => {
    test('created: the launcher waits in the container cgroup and no user code runs; started: the user process is PID 1 of new namespaces inside the rootfs', async ({ guest }) => {
      const rootfs = await busyboxRootfs(guest, CID)
      await guest.agent.agent.createContainer({ containerId: CID, execId: CID, OCI: ociSpec(rootfs, ['sh', '-c', 'echo started; exec sleep 1000'], { hostname: 'life' }) }, T)
      const created = await cgroupProcs(guest, CID)
      expect(created.length).toBe(1) // only the gated launcher, placed before any user code
      expect((await sh(guest, `cat /proc/${created[0]}/cmdline | tr '\\0' ' '`)).stdout).toContain('sh -c read -r _kataref_gate')
      expect((await sh(guest, `pidof sleep || echo none`)).stdout.trim()).toBe('none')

      await guest.agent.agent.startContainer({ containerId: CID }, T)
      const first = await guest.agent.agent.readStdout({ containerId: CID, execId: CID, len: 100 }, T)
      expect(Buffer.from(first.data).toString()).toBe('started\n')
      const pids = await cgroupProcs(guest, CID)
      const init = await nsInitPid(guest, pids)
      expect(init).toBeDefined()
      const w = await sh(
        guest,
        `readlink /proc/${init}/root; cat /proc/${init}/cgroup; for f in /proc/${init}/ns/pid /proc/1/ns/pid /proc/${init}/ns/mnt /proc/1/ns/mnt; do readlink $f; done; cat /proc/${init}/comm; grep -c '^proc /proc proc' /proc/${init}/mounts; grep -c '${CID}' /proc/mounts || true`,
      )
      const [root, cg, pidns, hostPidns, mntns, hostMntns, comm, procMounted, hostMounts] = w.stdout.trim().split('\n')
      expect(root).toBe(rootfs)
      expect(cg).toBe(`0::/${CID}`)
      expect(pidns).not.toBe(hostPidns)
      expect(mntns).not.toBe(hostMntns)
      expect(comm).toBe('sleep')
      expect(procMounted).toBe('1') // /proc of the new PID namespace, mounted in the container's mount namespace only
      expect(hostMounts).toBe('0')
    })

    test('exec: env/cwd/user/hostname are the request\'s; stdin relay with CloseStdin; empty ReadStdout = EOF', async ({ guest }) => {
      const r = await run(guest, CID, 'e-id', ['sh', '-c', 'id -u; id -g; pwd; hostname; env | sort; echo $$'], { env: ['PATH=/bin', 'A=b c'], cwd: '/work', uid: 1000, gid: 1001 })
      expect(r.status).toBe(0)
      const lines = r.out.trim().split('\n')
      expect(lines.slice(0, 4)).toEqual(['1000', '1001', '/work', 'life'])
      expect(lines).toContain('A=b c')
      expect(lines).toContain('PATH=/bin')
      expect(r.out).not.toMatch(/kataref/i)
      expect(Number(lines.at(-1))).toBeGreaterThan(1)

      await exec(guest, CID, 'e-cat', ['cat'])
      expect((await guest.agent.agent.writeStdin({ containerId: CID, execId: 'e-cat', data: Buffer.from('hello through stdin\n') }, T)).len).toBe(20)
      await guest.agent.agent.closeStdin({ containerId: CID, execId: 'e-cat' }, T)
      expect(await readAll(guest, CID, 'e-cat')).toBe('hello through stdin\n')
      expect((await guest.agent.agent.readStdout({ containerId: CID, execId: 'e-cat', len: 10 }, T)).data.length).toBe(0)
      expect((await guest.agent.agent.waitProcess({ containerId: CID, execId: 'e-cat' }, T)).status).toBe(0)
      // Waited and both streams at EOF: the exec leaves the table
      expect(await readAll(guest, CID, 'e-cat', 'stderr')).toBe('')
      await expect(guest.agent.agent.waitProcess({ containerId: CID, execId: 'e-cat' }, T)).rejects.toMatchObject({ code: 5 })
    })

    test('RemoveContainer kills everything: no process, no cgroup directory, no mount left (zombies re-parented to the guest init are given 2 s to be reaped)', async ({ guest }) => {
      await exec(guest, CID, 'e-bg', ['sleep', '1000'])
      const before = await cgroupProcs(guest, CID)
      expect(before.length).toBeGreaterThanOrEqual(4)
      await guest.agent.agent.removeContainer({ containerId: CID, timeout: 10 }, T)
      const w = await sh(guest, `test -e /sys/fs/cgroup/${CID} && echo cgroup-left; for p in ${before.join(' ')}; do i=0; while [ -e /proc/$p ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; test -e /proc/$p && echo proc-left-$p $(cat /proc/$p/stat); done; grep '${CID}' /proc/mounts; echo end`)
      expect(w.stdout.trim()).toBe('end')
      await expect(guest.agent.agent.startContainer({ containerId: CID }, T)).rejects.toMatchObject({ code: 5 })
    })
  },
)
