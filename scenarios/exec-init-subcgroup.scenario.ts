import { scenario, test, expect, type RealGuest } from '../harness/scenario.ts'
import { cgroupProcs, createAndStart, exec, nsInitPid, run, sh, T } from './_support/containers.ts'

// What a Docker-in-Docker entrypoint does inside its container: move every process of the container
// cgroup into a child named `init`, then enable controllers for its own children.
const dindEntrypoint = (cg: string) =>
  `set -e; mkdir ${cg}/init; for p in $(cat ${cg}/cgroup.procs); do echo $p > ${cg}/init/cgroup.procs; done; echo +pids > ${cg}/cgroup.subtree_control; echo done`

async function probeAndExec(guest: RealGuest, cid: string, cpath: string) {
  const cg = `/sys/fs/cgroup/${cpath.replace(/^\/+/, '')}`
  await createAndStart(guest, cid, ['sleep', '1000'], { cgroupsPath: cpath })
  const init = await nsInitPid(guest, await cgroupProcs(guest, cpath))
  expect(init).toBeDefined()
  expect((await sh(guest, `cat /proc/${init}/cgroup`)).stdout.trim()).toBe(`0::/${cpath.replace(/^\/+/, '').replaceAll(':', '/')}`)

  // Before the workload makes `init`, an exec lands in the container cgroup itself.
  const early = await run(guest, cid, 'early', ['cat', '/proc/self/cgroup'])
  expect(early.out.trim()).toBe(`0::/${cpath.replace(/^\/+/, '')}`)

  expect((await sh(guest, dindEntrypoint(cg))).stdout.trim()).toBe('done')
  // The trigger (cgroup v2 "no internal processes"): a new pid written straight to <cgroup>/cgroup.procs → EBUSY.
  const direct = await sh(guest, `sh -c 'echo $$ > ${cg}/cgroup.procs' 2>&1; echo rc=$?`)
  expect(direct.stdout).toMatch(/busy/i)
  expect(direct.stdout).toMatch(/rc=[1-9]/)

  // ExecProcess succeeds, and the exec'd process sits in <cgroup>/init (4e3d257dc0).
  const r = await run(guest, cid, 'after', ['cat', '/proc/self/cgroup'])
  expect(r.status).toBe(0)
  expect(r.out.trim()).toBe(`0::/${cpath.replace(/^\/+/, '')}/init`)
  // The witness sees a long-running exec in init/cgroup.procs too.
  await exec(guest, cid, 'bg', ['sleep', '1000'])
  const inInit = await cgroupProcs(guest, `${cpath}/init`)
  const bg = await nsInitPid(guest, inInit)
  expect(bg).toBe(init) // the init is in there (moved by the workload)…
  expect(inInit.length).toBeGreaterThanOrEqual(4) // …with the unshare parent and both exec pids (nsenter + sleep)
  expect(await cgroupProcs(guest, cpath)).toEqual([])
  await guest.agent.agent.removeContainer({ containerId: cid, timeout: 10 }, T)
  expect((await sh(guest, `test -e ${cg} && echo left || echo gone`)).stdout.trim()).toBe('gone')
}

scenario(
  {
    name: 'exec-init-subcgroup',
    upstream:
      'kata-containers 4e3d257dc0 (PR #13272): cgroupfs manager puts exec processes into <cgroup>/init when it exists on cgroup v2, and joins absolute cgroup paths under the cgroup root (issue #9701: kubectl exec into DinD → EBUSY)',
    requires: ['qemu'],
  },
  () => {
    test('default cgroupsPath (/<cid>): EBUSY trigger proven, then ExecProcess lands in <cgroup>/init', async ({ guest }) => {
      await probeAndExec(guest, 'ctr-dind', '/ctr-dind')
    })

    test('absolute Kubernetes-style cgroupsPath /kubepods/burstable/pod1/<cid>: the init subcgroup is found under /sys/fs/cgroup', async ({ guest }) => {
      await probeAndExec(guest, 'ctr-abs', '/kubepods/burstable/pod1/ctr-abs')
    })

    test('with the subtree controllers disabled again the direct write succeeds (the EBUSY is the v2 rule, not the path)', async ({ guest }) => {
      const cg = '/sys/fs/cgroup/kataref-probe'
      const r = await sh(
        guest,
        `set -e; mkdir -p ${cg}/init; sleep 100 & p=$!; echo $p > ${cg}/init/cgroup.procs; echo +pids > ${cg}/cgroup.subtree_control; ` +
          `sh -c 'echo $$ > ${cg}/cgroup.procs' 2>/dev/null && echo unexpected || echo busy; echo -pids > ${cg}/cgroup.subtree_control; ` +
          `sh -c 'echo $$ > ${cg}/cgroup.procs' && echo ok-empty; kill $p; wait $p 2>/dev/null || true; sleep 0.1; rmdir ${cg}/init ${cg}; echo cleaned`,
      )
      expect(r.stdout.trim().split('\n')).toEqual(['busy', 'ok-empty', 'cleaned'])
    })
  },
)
