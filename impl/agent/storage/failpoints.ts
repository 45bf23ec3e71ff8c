// Debug-only fault injection for the multi-layer EROFS handler in a real guest (scenario
// `concurrent-mount-rollback`). A storage option `X-kataref.failpoint=<step>:<layer>` makes that step
// of that lower layer fail — but only when the agent runs with `--failpoints` (kernel command line
// word `kataref.agent_failpoints=1`); otherwise the option is ignored like any unknown option.
//
// Faults are injected at the platform seams (DM control node, node ops, mounter, device resolver),
// exactly where the kernel would fail, so the real create/rollback code runs unchanged:
//   partition-wait  the layer's partition node "never appears" (PartitionWaitError)
//   create          DM_DEV_CREATE of the layer's verity device answers EIO
//   table-load      DM_TABLE_LOAD answers EINVAL (after CREATE succeeded: G2 removal must run)
//   resume          DM_DEV_SUSPEND (resume) answers EIO
//   status          DM_DEV_STATUS answers EIO
//   mknod           mknod of /dev/mapper/<name> fails with EPERM
//   mount           mount(2) of the layer's device fails with EIO
//   overlay         the final overlay mount fails (layer part ignored, e.g. `overlay:0`)
import { basename } from 'node:path'
import { DmCmd, DmIoctlOffset, DM_NAME_LEN, Errno, type DmBackend, type DmControl, type NodeOps } from '../../dmverity/index.ts'
import { Code, InvalidInputError, KatarefError } from '../../types/errors.ts'
import { PartitionWaitError } from './multi-layer-errors.ts'
import { classifyMultiLayerGroup, isGptPartitioned, partitionNumber, partitionPath } from './multi-layer-options.ts'
import type { StorageEnv } from './multi-layer-state.ts'
import type { DeviceResolver, Mounter, StorageLike } from './storage-context.ts'

export const FAILPOINT_OPTION = 'X-kataref.failpoint='
export const FAILPOINT_STEPS = ['partition-wait', 'create', 'table-load', 'resume', 'status', 'mknod', 'mount', 'overlay'] as const
export type FailpointStep = (typeof FAILPOINT_STEPS)[number]

export interface Failpoint {
  step: FailpointStep
  /** Lower index after the partition sort (§3.3); ignored for `overlay`. */
  layer: number
}

/** Every `X-kataref.failpoint=` option of the request, in order; a malformed one is an INVALID_ARGUMENT. */
export function parseFailpoints(storages: readonly StorageLike[]): Failpoint[] {
  const out: Failpoint[] = []
  for (const s of storages) {
    for (const o of s.options) {
      if (!o.startsWith(FAILPOINT_OPTION)) continue
      const m = /^([a-z-]+):(\d+)$/.exec(o.slice(FAILPOINT_OPTION.length))
      if (!m || !(FAILPOINT_STEPS as readonly string[]).includes(m[1]!)) {
        throw new InvalidInputError('storage option', `${o}: expected ${FAILPOINT_OPTION}<${FAILPOINT_STEPS.join('|')}>:<layer>`)
      }
      out.push({ step: m[1] as FailpointStep, layer: Number(m[2]) })
    }
  }
  return out
}

export class FailpointError extends KatarefError {}

const DM_STEP: Partial<Record<FailpointStep, { cmd: number; errno: number }>> = {
  create: { cmd: DmCmd.DEV_CREATE, errno: Errno.EIO },
  'table-load': { cmd: DmCmd.TABLE_LOAD, errno: Errno.EINVAL },
  resume: { cmd: DmCmd.DEV_SUSPEND, errno: Errno.EIO },
  status: { cmd: DmCmd.DEV_STATUS, errno: Errno.EIO },
}

/**
 * A StorageEnv for one request whose seams fail as the failpoints say. Layer → partition number is
 * taken from the group's own classification; the base device is learnt when it is resolved.
 */
export function withFailpoints(env: StorageEnv, storages: readonly StorageLike[], fps: readonly Failpoint[]): StorageEnv {
  if (fps.length === 0) return env
  const group = classifyMultiLayerGroup(storages)
  const bases = new Map<string, string>()
  /** Partition path of a failpoint's layer, once its base device is known. */
  const partOf = (fp: Failpoint): string | undefined => {
    const l = group.lowers[fp.layer]
    if (!l || !isGptPartitioned(l.storage)) return undefined
    const n = partitionNumber(l.storage)
    const base = bases.get(l.storage.source)
    return n === undefined || base === undefined ? undefined : partitionPath(base, n)
  }
  const hit = (step: FailpointStep, pred: (part: string) => boolean) =>
    fps.some((fp) => fp.step === step && (() => { const p = partOf(fp); return p !== undefined && pred(p) })())
  const verityPrefix = (part: string) => `kata-verity-${basename(part)}-off`
  const injected = (what: string, errno?: number) =>
    Object.assign(new FailpointError(`failpoint: ${what}`, Code.INTERNAL, { failpoint: true }), errno !== undefined ? { errno } : {})

  const devices: DeviceResolver = {
    resolveBaseDevice: async (s, deadline) => {
      const base = await env.devices.resolveBaseDevice(s, deadline)
      if (!bases.has(s.source)) bases.set(s.source, base)
      return base
    },
    waitForPartition: async (path, deadline) => {
      if (hit('partition-wait', (p) => p === path)) throw new PartitionWaitError(path, deadline.budgetMs)
      return env.devices.waitForPartition(path, deadline)
    },
  }
  const dm: DmBackend = {
    kind: `${env.dm.kind}+failpoints`,
    openControl: async (): Promise<DmControl> => {
      const c = await env.dm.openControl()
      return {
        ioctl: async (request, buf) => {
          const cmd = request & 0xff
          const nameBytes = buf.subarray(DmIoctlOffset.name, DmIoctlOffset.name + DM_NAME_LEN)
          const name = nameBytes.subarray(0, Math.max(0, nameBytes.indexOf(0))).toString('latin1')
          for (const [step, f] of Object.entries(DM_STEP) as [FailpointStep, { cmd: number; errno: number }][]) {
            if (f.cmd === cmd && hit(step, (p) => name.startsWith(verityPrefix(p)))) return f.errno
          }
          return c.ioctl(request, buf)
        },
        close: () => c.close(),
      }
    },
  }
  const nodes: NodeOps = {
    mkdirAll: (p) => env.nodes.mkdirAll(p),
    exists: (p) => env.nodes.exists(p),
    unlink: (p) => env.nodes.unlink(p),
    rmdirIfEmpty: (p) => env.nodes.rmdirIfEmpty(p),
    ...(env.nodes.removeTree ? { removeTree: (p: string) => env.nodes.removeTree!(p) } : {}),
    mknodBlock: async (path, mode, major, minor) => {
      if (hit('mknod', (p) => basename(path).startsWith(verityPrefix(p)))) throw injected(`mknod ${path}: EPERM`, Errno.EPERM)
      return env.nodes.mknodBlock(path, mode, major, minor)
    },
  }
  const mounter: Mounter = {
    mount: async (m) => {
      if (m.fstype === 'overlay' && fps.some((fp) => fp.step === 'overlay')) throw injected(`mount overlay on ${m.target}: EIO`, Errno.EIO)
      if (m.fstype === 'erofs' && hit('mount', (p) => m.source === p || basename(m.source).startsWith(verityPrefix(p)))) {
        throw injected(`mount erofs ${m.source} on ${m.target}: EIO`, Errno.EIO)
      }
      return env.mounter.mount(m)
    },
    umount: (t) => env.mounter.umount(t),
  }
  return { ...env, devices, dm, nodes, mounter }
}
