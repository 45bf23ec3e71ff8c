// Shared by the container scenarios (issue 5): a busybox rootfs built in the guest from the guest's own
// busybox (by the witness shell), OCI specs as the runtime would send them, stdio helpers and witness
// probes of /proc and /sys/fs/cgroup.
import type { RealGuest } from '../../harness/scenario.ts'

export const SHARED = '/run/kata-containers/shared/containers'
export const T = { timeoutMs: 60_000 }
const APPLETS = ['sh', 'echo', 'cat', 'env', 'id', 'sleep', 'pwd', 'hostname', 'ls', 'kill', 'true', 'false', 'stat', 'mount', 'grep', 'dd', 'head', 'wc', 'touch', 'mkdir', 'rm', 'cut', 'sort', 'tr', 'mknod', 'od']

export async function sh(guest: RealGuest, cmd: string): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await guest.debug.run(cmd, { timeoutMs: 60_000 })
  return { stdout: r.stdout, stderr: (r as { stderr?: string }).stderr ?? '', exitCode: r.exitCode }
}

/** CreateSandbox once per guest (idempotent for the scenarios of one file). */
export async function ensureSandbox(guest: RealGuest, id = 'sb-issue5'): Promise<void> {
  const have = await sh(guest, `test -d ${SHARED} && echo yes`)
  if (have.stdout.trim() !== 'yes') await guest.agent.agent.createSandbox({ sandboxId: id, hostname: 'kataref-guest', dns: [] }, T)
}

/** `<shared>/<cid>/rootfs` with busybox and a few applet links, /proc /dev /tmp /work mount points. */
export async function busyboxRootfs(guest: RealGuest, cid: string): Promise<string> {
  await ensureSandbox(guest)
  const r = `${SHARED}/${cid}/rootfs`
  const res = await sh(guest, `set -e; mkdir -p ${r}/bin ${r}/proc ${r}/dev ${r}/tmp ${r}/work ${r}/data; cp /bin/busybox ${r}/bin/busybox; ` + `for a in ${APPLETS.join(' ')}; do ln -sf busybox ${r}/bin/$a; done; echo ok`)
  if (res.stdout.trim() !== 'ok') throw new Error(`rootfs for ${cid}: ${res.stdout} ${res.stderr}`)
  return r
}

export interface SpecOpts {
  env?: string[]
  cwd?: string
  uid?: number
  gid?: number
  hostname?: string
  cgroupsPath?: string
  /** Default true: with linux.resources the agent creates and applies the cgroup. */
  resources?: boolean
  mounts?: { destination: string; source: string; type: string; options: string[] }[]
  hugepageLimits?: { Pagesize: string; Limit: bigint }[]
}

type ProcessOpts = Pick<SpecOpts, 'env' | 'cwd' | 'uid' | 'gid'>

/** The OCI process of a container or an exec: PATH=/bin, cwd /, root unless told otherwise. */
function ociProcess(args: string[], o: ProcessOpts) {
  return { Args: args, Env: o.env ?? ['PATH=/bin'], Cwd: o.cwd ?? '/', User: { UID: o.uid ?? 0, GID: o.gid ?? 0 } }
}

export function ociSpec(rootfs: string, args: string[], o: SpecOpts = {}) {
  return {
    Version: '1.0.2',
    Process: ociProcess(args, o),
    Root: { Path: rootfs, Readonly: false },
    Hostname: o.hostname ?? 'ctr',
    Mounts: o.mounts ?? [],
    Linux: {
      CgroupsPath: o.cgroupsPath ?? '',
      ...(o.resources === false ? {} : { Resources: { Pids: { Limit: 256n }, HugepageLimits: o.hugepageLimits ?? [] } }),
    },
  }
}

export async function createAndStart(guest: RealGuest, cid: string, args: string[], o: SpecOpts = {}): Promise<void> {
  const rootfs = await busyboxRootfs(guest, cid)
  await guest.agent.agent.createContainer({ containerId: cid, execId: cid, OCI: ociSpec(rootfs, args, o) }, T)
  await guest.agent.agent.startContainer({ containerId: cid }, T)
}

export async function exec(guest: RealGuest, cid: string, execId: string, args: string[], o: ProcessOpts = {}): Promise<void> {
  await guest.agent.agent.execProcess({ containerId: cid, execId, process: ociProcess(args, o) }, T)
}

/** ReadStdout/ReadStderr until the empty response (EOF). */
export async function readAll(guest: RealGuest, cid: string, execId: string, which: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
  let out = ''
  for (;;) {
    const req = { containerId: cid, execId, len: 4096 }
    const r = which === 'stdout' ? await guest.agent.agent.readStdout(req, T) : await guest.agent.agent.readStderr(req, T)
    if (r.data.length === 0) return out
    out += Buffer.from(r.data).toString()
  }
}

export async function run(guest: RealGuest, cid: string, execId: string, args: string[], o: Parameters<typeof exec>[4] = {}): Promise<{ out: string; err: string; status: number }> {
  await exec(guest, cid, execId, args, o)
  const [out, err, w] = await Promise.all([readAll(guest, cid, execId), readAll(guest, cid, execId, 'stderr'), guest.agent.agent.waitProcess({ containerId: cid, execId }, T)])
  return { out, err, status: w.status }
}

/** Witness: the host pids in a cgroup's cgroup.procs (relative to /sys/fs/cgroup). */
export async function cgroupProcs(guest: RealGuest, cgroupRel: string): Promise<number[]> {
  const r = await sh(guest, `cat /sys/fs/cgroup/${cgroupRel.replace(/^\/+/, '')}/cgroup.procs`)
  return r.stdout.split('\n').filter(Boolean).map(Number)
}

/** Witness: among pids, the one that is PID 1 of its own namespace (NSpid ends in 1 and has 2 levels). */
export async function nsInitPid(guest: RealGuest, pids: number[]): Promise<number | undefined> {
  for (const p of pids) {
    const r = await sh(guest, `grep '^NSpid:' /proc/${p}/status`)
    const parts = r.stdout.trim().split(/\s+/).slice(1)
    if (parts.length === 2 && parts[1] === '1') return p
  }
  return undefined
}
