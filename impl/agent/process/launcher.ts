// The process launcher. Node cannot fork+unshare itself, so every container process starts as a small
// busybox sh script the agent spawns (its stdio are the pipes the agent relays; fd 3 is a "gate"):
//   1. the script blocks on the gate; meanwhile the agent applies the launcher's pid to the container's
//      cgroup (spec §2: from the parent side, after spawn, before user code runs) — so everything the
//      launcher forks afterwards is born in that cgroup;
//   2. init: `unshare --mount --uts --ipc --pid --fork --propagation private`; inside the new PID
//      namespace a shell (PID 1) mounts /proc and a minimal /dev into the rootfs, sets the hostname,
//      optionally makes the rootfs read-only, then `nsenter -F -r<rootfs> -w<cwd> -S uid -G gid`
//      chroots, changes directory and user and execs the user's args (the user process stays PID 1);
//   3. exec: `nsenter -t <init pid> -m -u -i -p -r -w<cwd> -S uid -G gid` joins the init's namespaces
//      and root (busybox nsenter forks into the PID namespace and its parent relays the exit status).
// busybox unshare/nsenter parents re-raise a child's fatal signal on themselves, so the agent's own child
// ends with the same signal as the user process and the exit code derivation (128+signal) holds.
// Every value is embedded single-quoted; nothing from a request is ever interpreted by the shell.

export const GUEST_BUSYBOX = '/bin/busybox'

/** POSIX sh single-quoting. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export interface LaunchCommon {
  args: string[]
  /** The user's environment, exactly (KEY=VALUE); the launcher strips what sh adds itself. */
  env: string[]
  /** Host path of the working directory (already resolved inside the rootfs). */
  cwdHostPath: string
  uid: number
  gid: number
  busybox?: string
}

export interface InitLaunch extends LaunchCommon {
  rootfs: string
  hostname: string
  readonlyRootfs: boolean
  /** Bind mounts (host source → resolved host destination inside the rootfs), done in the new mount ns. */
  binds?: { source: string; destination: string; readonly: boolean }[]
  /** Device nodes made in the container's /dev tmpfs (path inside the container, e.g. /dev/xda). */
  devices?: { path: string; type: 'b' | 'c'; major: number; minor: number; mode: number }[]
}

export interface ExecLaunch extends LaunchCommon {
  /** Host pid of the container's init process. */
  initPid: number
}

const GATE_WAIT = `read -r _kataref_gate <&3 || exit 125\n`
const GATE = `${GATE_WAIT}exec 3<&-\n`
const SH_VARS = ['SHLVL', 'PWD', 'OLDPWD', '_kataref_gate']

function envStrip(userEnv: string[]): string {
  const keys = new Set(userEnv.map((e) => e.split('=')[0]))
  return SH_VARS.filter((k) => !keys.has(k))
    .map((k) => `-u ${k}`)
    .join(' ')
}

function userArgs(c: LaunchCommon): string {
  return `-S ${c.uid >>> 0} -G ${c.gid >>> 0} -- ${c.args.map(shq).join(' ')}`
}

const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty']

/** The inner script, run as PID 1 of the new namespaces. */
export function initInnerScript(l: InitLaunch): string {
  const bb = shq(l.busybox ?? GUEST_BUSYBOX)
  const r = shq(l.rootfs)
  const lines = [
    `set -e`,
    `if [ -d ${r}/proc ]; then ${bb} mount -t proc -o nosuid,nodev,noexec proc ${r}/proc; fi`,
    `if [ -d ${r}/dev ]; then ${bb} mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs ${r}/dev`,
    ...DEV_NODES.map((d) => `  ${bb} touch ${r}/dev/${d} && ${bb} mount --bind /dev/${d} ${r}/dev/${d}`),
    `  ${bb} mkdir -p ${r}/dev/pts ${r}/dev/shm; ${bb} ln -s /proc/self/fd ${r}/dev/fd`,
    ...(l.devices ?? [])
      .filter((d) => /^\/dev\/.+$/.test(d.path) && !d.path.split('/').includes('..'))
      .map((d) => `  ${bb} mkdir -p ${shq(`${l.rootfs}${d.path}`.replace(/\/[^/]*$/, ''))}; ${bb} mknod -m ${(d.mode & 0o777).toString(8)} ${shq(`${l.rootfs}${d.path}`)} ${d.type} ${d.major >>> 0} ${d.minor >>> 0}`),
    `fi`,
  ]
  for (const b of l.binds ?? []) {
    lines.push(`${bb} mount --bind ${shq(b.source)} ${shq(b.destination)}`)
    if (b.readonly) lines.push(`${bb} mount -o remount,bind,ro ${shq(b.destination)}`)
  }
  if (l.hostname !== '') lines.push(`${bb} hostname ${shq(l.hostname)}`)
  if (l.readonlyRootfs) lines.push(`${bb} mount --bind ${r} ${r}`, `${bb} mount -o remount,bind,ro ${r}`)
  // Setup done: tell the agent (StartContainer returns only now, so an exec never races the chroot).
  lines.push(`echo ready >&3`, `exec 3>&-`)
  lines.push(`set +e`, `exec ${bb} env ${envStrip(l.env)} ${bb} nsenter -F -r${r} -w${shq(l.cwdHostPath)} ${userArgs(l)}`)
  return lines.join('\n') + '\n'
}

/** Script the agent spawns for a container's init process (`sh -c <script>`). */
export function initLaunchScript(l: InitLaunch): string {
  const bb = shq(l.busybox ?? GUEST_BUSYBOX)
  return `${GATE_WAIT}exec ${bb} unshare -m -u -i -p -f --propagation private ${bb} sh -c ${shq(initInnerScript(l))}\n`
}

/** Script the agent spawns for an exec'd process. */
export function execLaunchScript(l: ExecLaunch): string {
  const bb = shq(l.busybox ?? GUEST_BUSYBOX)
  return `${GATE}exec ${bb} env ${envStrip(l.env)} ${bb} nsenter -t ${l.initPid} -m -u -i -p -r -w${shq(l.cwdHostPath)} ${userArgs(l)}\n`
}
