// Pure: the qemu-system-x86_64 argv for a kataref guest, from a typed config.
// Socket and port names follow harness/guest-contract.md.
import { join } from 'node:path'
import { InvalidInputError } from '../../../types/errors.ts'

export const AGENT_PORT_NAME = 'kataref.agent.0'
export const DEBUG_PORT_NAME = 'kataref.debug.0'

export type Accel = 'kvm' | 'tcg'

export interface RunDirPaths {
  /** QMP for the runtime's client (impl/runtime/hypervisor/qemu/qmp). */
  qmpSocket: string
  /** A second QMP monitor private to the launcher (quit on stop), so it never waits for the client's connection. */
  controlSocket: string
  agentSocket: string
  debugSocket: string
  consoleLog: string
}

/** The contract's file names inside a VM's run dir. */
export function runDirPaths(runDir: string): RunDirPaths {
  return {
    qmpSocket: join(runDir, 'qmp.sock'),
    controlSocket: join(runDir, 'qmp-control.sock'),
    agentSocket: join(runDir, 'agent.sock'),
    debugSocket: join(runDir, 'debug.sock'),
    consoleLog: join(runDir, 'console.log'),
  }
}

export interface QemuDisk {
  path: string
  /** Default true. */
  readOnly?: boolean
  /** `vmdk`: a descriptor whose extents name other files (the multi-layer EROFS GPT disk). */
  format?: 'raw' | 'qcow2' | 'vmdk'
  /** QEMU id (default disk<N>; the rootfs is `rootfs`). */
  id?: string
  serial?: string
}

export interface QemuShare {
  path: string
  mountTag: string
  readOnly?: boolean
}

export interface QemuConfig {
  accel: Accel
  /** Default: `host` with KVM, `max` with TCG. */
  cpu?: string
  smp: number
  memoryMiB: number
  kernel: string
  initrd?: string
  /** Kernel command line (see `kernelCmdline`). */
  append: string
  /** The guest rootfs, as the first virtio-blk disk (/dev/vda). */
  rootfs?: QemuDisk
  /** Further virtio-blk disks (/dev/vdb, …). */
  disks?: QemuDisk[]
  /** 9p shares (virtio-9p-pci). */
  shares?: QemuShare[]
  paths: RunDirPaths
  /** Exit instead of rebooting (guest reboot/panic ends qemu). Default true. */
  noReboot?: boolean
  /** Appended verbatim. */
  extraArgs?: string[]
  /**
   * Hot-plug bridges as runtime-rs's cmdline generator writes them (spec §2): `pci-bridge-<n>` on
   * `pcie.0`, `chassis_nr=n+1`, `addr=2+n`, `shpc=off`, with reserve windows. Default 0.
   */
  pciBridges?: number
  /**
   * Guest RAM from a file (VM templates, spec §7): `memory-backend-file` at `path`; `share: true`
   * for the template VM (writes reach the file), false for a clone (private copy-on-write mapping).
   */
  memoryBackend?: { path: string; share: boolean }
  /** `-incoming <value>` (`defer` for a VM restored from a template). */
  incoming?: string
}

/** Id of the file memory backend (`memoryBackend`). */
export const MEMORY_BACKEND_ID = 'kataref-mem'

/** One `pci-bridge` per n in 0..count-1 (spec §2, non-firmware q35 form). */
export function pciBridgeArgs(count: number): string[] {
  if (!Number.isInteger(count) || count < 0 || count > 5) throw new InvalidInputError('pciBridges', `must be an integer 0..5, got ${count}`)
  const args: string[] = []
  for (let n = 0; n < count; n++) {
    args.push('-device', `pci-bridge,bus=pcie.0,id=pci-bridge-${n},chassis_nr=${n + 1},shpc=off,addr=${2 + n},io-reserve=4k,mem-reserve=1m,pref64-reserve=1m`)
  }
  return args
}

export interface KernelCmdlineOptions {
  /** Default true: fewer console lines, which TCG prints slowly. */
  quiet?: boolean
  rootDevice?: string
  agentPort?: string
  debugPort?: string
  /** Start the agent in the guest (default true). */
  agent?: boolean
  extra?: string[]
}

/** The kernel command line the guest images expect (images/guest/scripts.ts lists the knobs). */
export function kernelCmdline(opts: KernelCmdlineOptions = {}): string {
  // Boot-speed parameters follow Kata's defaults (no crypto self-tests, trust the TSC, expedited
  // RCU, no i8042 probing): under TCG they take the debug shell from ~7 s to ~5 s.
  const words = [
    'console=ttyS0',
    'panic=1',
    'reboot=k',
    'cgroup_no_v1=all',
    'cryptomgr.notests',
    'tsc=reliable',
    'no_timer_check',
    'rcupdate.rcu_expedited=1',
    'noreplace-smp',
    'nomodeset',
    'i8042.direct=1',
    'i8042.dumbkbd=1',
    'i8042.nopnp=1',
    'i8042.noaux=1',
  ]
  if (opts.quiet ?? true) words.push('quiet')
  words.push(`kataref.root=${opts.rootDevice ?? '/dev/vda'}`)
  words.push(`kataref.debug_port=${opts.debugPort ?? DEBUG_PORT_NAME}`, `kataref.agent_port=${opts.agentPort ?? AGENT_PORT_NAME}`)
  if (opts.agent === false) words.push('kataref.agent=0')
  words.push(...(opts.extra ?? []))
  return words.join(' ')
}

function checkOptValue(what: string, v: string): string {
  // QEMU option values use ',' as a separator (escaped as ',,'); refuse newlines outright.
  if (/[\n\0]/.test(v)) throw new InvalidInputError(what, 'contains a newline or NUL')
  return v.replaceAll(',', ',,')
}

function diskArgs(d: QemuDisk, id: string): string[] {
  const ro = d.readOnly ?? true
  const drive = [`file=${checkOptValue('disk path', d.path)}`, 'if=none', `id=${id}`, `format=${d.format ?? 'raw'}`, `readonly=${ro ? 'on' : 'off'}`]
  const dev = ['virtio-blk-pci', `drive=${id}`, `id=${id}-dev`]
  if (d.serial) dev.push(`serial=${checkOptValue('disk serial', d.serial)}`)
  return ['-drive', drive.join(','), '-device', dev.join(',')]
}

/** The full argv (without the binary). */
export function buildQemuArgs(c: QemuConfig): string[] {
  if (!Number.isInteger(c.smp) || c.smp < 1) throw new InvalidInputError('smp', `must be a positive integer, got ${c.smp}`)
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB < 64) throw new InvalidInputError('memoryMiB', `must be an integer >= 64, got ${c.memoryMiB}`)
  const p = c.paths
  const args: string[] = [
    '-name', 'kataref',
    '-machine', `q35,accel=${c.accel}${c.memoryBackend ? `,memory-backend=${MEMORY_BACKEND_ID}` : ''}`,
    '-cpu', c.cpu ?? (c.accel === 'kvm' ? 'host' : 'max'),
    '-smp', String(c.smp),
    '-m', `${c.memoryMiB}M`,
    '-nodefaults',
    '-nographic',
    '-no-user-config',
  ]
  if (c.memoryBackend) {
    const mb = c.memoryBackend
    args.push('-object', `memory-backend-file,id=${MEMORY_BACKEND_ID},size=${c.memoryMiB}M,mem-path=${checkOptValue('memory path', mb.path)},share=${mb.share ? 'on' : 'off'}`)
  }
  // Bridges first: their fixed addr (2+n) must be taken before QEMU auto-assigns slots to the disks.
  args.push(...pciBridgeArgs(c.pciBridges ?? 0))
  if (c.noReboot ?? true) args.push('-no-reboot')
  args.push('-kernel', c.kernel)
  if (c.initrd) args.push('-initrd', c.initrd)
  args.push('-append', c.append)
  // Serial console (ttyS0) → file.
  args.push('-chardev', `file,id=serial0,path=${checkOptValue('console log', p.consoleLog)}`, '-serial', 'chardev:serial0')
  if (c.rootfs) args.push(...diskArgs(c.rootfs, c.rootfs.id ?? 'rootfs'))
  for (const [i, d] of (c.disks ?? []).entries()) args.push(...diskArgs(d, d.id ?? `disk${i}`))
  for (const [i, s] of (c.shares ?? []).entries()) {
    args.push(
      '-fsdev', `local,id=fs${i},path=${checkOptValue('share path', s.path)},security_model=none${s.readOnly ?? true ? ',readonly=on' : ''},multidevs=remap`,
      '-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${checkOptValue('mount tag', s.mountTag)}`,
    )
  }
  // virtio-serial: agent (ttrpc) and debug (witness shell) ports, host side unix sockets.
  args.push(
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,id=agent,path=${checkOptValue('agent socket', p.agentSocket)},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT_NAME}`,
    '-chardev', `socket,id=debug,path=${checkOptValue('debug socket', p.debugSocket)},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=debug,name=${DEBUG_PORT_NAME}`,
  )
  // The launcher's private QMP monitor, then the client's QMP last: once qmp.sock exists, every
  // chardev above has been created.
  args.push('-chardev', `socket,id=qmpctl,path=${checkOptValue('control socket', p.controlSocket)},server=on,wait=off`, '-mon', 'chardev=qmpctl,mode=control')
  args.push('-chardev', `socket,id=qmp,path=${checkOptValue('qmp socket', p.qmpSocket)},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control')
  if (c.incoming !== undefined) args.push('-incoming', c.incoming)
  args.push(...(c.extraArgs ?? []))
  return args
}
