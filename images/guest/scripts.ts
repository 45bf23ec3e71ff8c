// The guest's boot scripts, as text. Everything runs under busybox sh (no udev, no systemd).
//
// Boot flow (full variant):
//   kernel → initramfs /init: mount proc/sys/devtmpfs, insmod the modules in dependency order,
//   wait for the rootfs disk (kataref.root=, default /dev/vda), mount it EROFS read-only,
//   move /dev /proc /sys into it, switch_root → /sbin/init (busybox init, reaps orphans)
//   → /etc/inittab: sysinit rc (tmpfs on /run /tmp /var, devpts, /dev/shm, cgroup2 at
//   /sys/fs/cgroup), respawn the debug shell on the kataref.debug.0 port, respawn the agent on
//   kataref.agent.0 with its output on /dev/console (ttyS0).
// Kernel command line knobs: kataref.root=DEV, kataref.init=PATH, kataref.rescue (shell on the
// console instead of powering off when the initramfs fails), kataref.debug_port=NAME,
// kataref.agent_port=NAME, kataref.agent=0 (do not start the agent), kataref.use_devmapper=0 (agent
// without devicemapper support), kataref.agent_failpoints=1 (agent --failpoints).

export const DEFAULT_DEBUG_PORT = 'kataref.debug.0'
export const DEFAULT_AGENT_PORT = 'kataref.agent.0'
export const DEFAULT_ROOT_DEVICE = '/dev/vda'
export const AGENT_GUEST_PATH = '/usr/lib/kataref/agent.mjs'
/** Printed on the console by the bare initramfs just before it powers off. */
export const BARE_MARKER = 'KATAREF_BARE_BOOTED'
/** Printed on the console by rc.sysinit once the rootfs is set up. */
export const SYSINIT_MARKER = 'kataref-guest: sysinit done'

const PATH = 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Reads `key=value` from /proc/cmdline into a shell variable (keeps the default otherwise). */
function cmdlineVar(variable: string, key: string): string {
  return `for w in $(cat /proc/cmdline); do case "$w" in ${key}=*) ${variable}="\${w#${key}=}";; esac; done`
}

export const INITRAMFS_INIT = `#!/bin/sh
# kataref initramfs: load modules, mount the EROFS rootfs read-only, switch_root into it.
${PATH}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
root=${DEFAULT_ROOT_DEVICE}
init=/sbin/init
rescue=0
for w in $(cat /proc/cmdline); do
  case "$w" in
    kataref.root=*) root="\${w#kataref.root=}" ;;
    kataref.init=*) init="\${w#kataref.init=}" ;;
    kataref.rescue) rescue=1 ;;
  esac
done
fail() {
  echo "kataref-initramfs: FATAL: $*"
  if [ "$rescue" = 1 ]; then exec sh; fi
  sleep 1
  poweroff -f
}
while read -r m; do
  insmod "/lib/modules/$m" || echo "kataref-initramfs: insmod $m failed"
done < /etc/kataref/modules
echo "kataref-initramfs: $(wc -l < /etc/kataref/modules) modules loaded at $(cut -d' ' -f1 /proc/uptime)s"
n=0
while [ ! -b "$root" ]; do
  n=$((n + 1))
  [ $n -ge 1000 ] && fail "root device $root did not appear"
  sleep 0.01
done
mount -t erofs -o ro "$root" /newroot || fail "cannot mount $root (erofs, read-only)"
for d in dev proc sys; do
  mount --move "/$d" "/newroot/$d" || fail "cannot move /$d into the rootfs"
done
echo "kataref-initramfs: root $root mounted, switching to $init at $(cut -d' ' -f1 /newroot/proc/uptime)s"
exec switch_root /newroot "$init"
`

export const BARE_INIT = `#!/bin/sh
# kataref bare initramfs (benchmarks): print a marker with the uptime and power off.
mount -t proc proc /proc
echo "${BARE_MARKER} uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
`

export const INITTAB = `# kataref guest: busybox init is PID 1 (it reaps orphans).
::sysinit:/usr/lib/kataref/rc.sysinit
::respawn:/usr/lib/kataref/debug-shell
::respawn:/usr/lib/kataref/agent-run
::shutdown:/bin/sync
`

export const RC_SYSINIT = `#!/bin/sh
# kataref guest sysinit: writable places on tmpfs, pseudo filesystems, pure cgroup v2.
${PATH}
mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }
mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /var
mkdir -p /run/kataref /var/log /var/lib /var/cache /var/tmp
chmod 1777 /var/tmp
ln -s /run /var/run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || echo "kataref-guest: cannot mount cgroup2"
mount --make-rshared / 2>/dev/null
hostname kataref-guest
ip link set lo up 2>/dev/null
echo "${SYSINIT_MARKER} at $(cut -d' ' -f1 /proc/uptime)s"
`

/**
 * The witness shell. Framing the host relies on (see impl/runtime/hypervisor/qemu/debug-console.ts):
 * the port carries a plain non-interactive busybox sh (no prompt, no echo); stdin/stdout/stderr are
 * all the port. The host sends self-delimiting commands that print begin/end markers.
 * A read on the port returns EOF at once while no host is connected, so sh exits and is restarted
 * after a short sleep; bytes sent by a host while no sh is running wait in QEMU until the port is
 * opened again, so nothing is lost.
 */
export const DEBUG_SHELL = `#!/bin/sh
# kataref guest witness shell on a virtio-serial port (kataref.debug_port=, default ${DEFAULT_DEBUG_PORT}).
${PATH}
export HOME=/root TERM=dumb
name=${DEFAULT_DEBUG_PORT}
${cmdlineVar('name', 'kataref.debug_port')}
cd /
dev=""
while [ -z "$dev" ]; do
  for p in /sys/class/virtio-ports/vport*; do
    if [ -r "$p/name" ] && [ "$(cat "$p/name")" = "$name" ]; then dev="/dev/\${p##*/}"; fi
  done
  [ -n "$dev" ] && [ -c "$dev" ] || { dev=""; sleep 0.2; }
done
echo "kataref-guest: debug shell on $dev ($name)" > /dev/console
while :; do
  sh <>"$dev" >&0 2>&0
  sleep 0.2
done
`

export const AGENT_RUN = `#!/bin/sh
# kataref guest agent launcher (respawned by init; output on the serial console).
${PATH}
export HOME=/root
name=${DEFAULT_AGENT_PORT}
enabled=1
${cmdlineVar('name', 'kataref.agent_port')}
${cmdlineVar('enabled', 'kataref.agent')}
# Build-option stand-ins for scenarios: kataref.use_devmapper=0 (no devicemapper support),
# kataref.agent_failpoints=1 (honour debug-only X-kataref.failpoint= storage options).
devmapper=1
failpoints=0
${cmdlineVar('devmapper', 'kataref.use_devmapper')}
${cmdlineVar('failpoints', 'kataref.agent_failpoints')}
export KATAREF_USE_DEVMAPPER="$devmapper"
# libuv's threadpool runs the agent's blocking DM ioctls (koffi .async): one thread per layer of an
# 8-layer group. libuv reads this once, when the pool starts.
export UV_THREADPOOL_SIZE=8
extra=""
[ "$failpoints" = 1 ] && extra="--failpoints"
if [ "$enabled" = 0 ] || [ ! -f ${AGENT_GUEST_PATH} ]; then
  echo "kataref-guest: agent not started (kataref.agent=$enabled)" > /dev/console
  exec sleep 2147483647
fi
# A respawn after the first start means the agent died: say so and back off before the next try.
if [ -e /run/kataref/agent-started ]; then
  echo "kataref-guest: agent exited; restarting" > /dev/console
  sleep 1
fi
: > /run/kataref/agent-started
# exec: the agent itself is init's child (no shell in between), as Kata's agent is under its init.
exec node ${AGENT_GUEST_PATH} --channel "vport:$name" $extra > /dev/console 2>&1
`

export const ETC_PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

export const ETC_GROUP = `root:x:0:
daemon:x:1:
tty:x:5:
disk:x:6:
nogroup:x:65534:
`
