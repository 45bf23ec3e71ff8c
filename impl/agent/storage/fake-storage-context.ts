// Fakes for the storage seams: FakeMounter (mount table over FakeNodeOps, opens DM devices it
// mounts), FakeDevices (source → base device, partitions = FakeNodeOps nodes), FakeClock, and
// `fakeStorageEnv()` wiring them with FakeDmBackend — the whole handler runs with no kernel.
import { FakeDmBackend, FakeNodeOps } from '../../dmverity/index.ts'
import { nullLogger } from '../../types/logger.ts'
import { waitForPath } from './partition-wait.ts'
import type { Clock, Deadline, DeviceResolver, Mounter, MountRequest, StorageLike } from './storage-context.ts'
import type { MultiLayerErofsState, StorageEnv } from './multi-layer-state.ts'

/** Virtual time: sleep advances `now` at once (optionally yielding a macrotask). */
export class FakeClock implements Clock {
  t = 0
  readonly sleeps: number[] = []
  now(): number {
    return this.t
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms)
    this.t += ms
    await new Promise((r) => setImmediate(r))
  }
}

type Match = string | RegExp
const matches = (m: Match, s: string) => (typeof m === 'string' ? m === s : m.test(s))

export class FakeMounter implements Mounter {
  readonly mounts = new Map<string, MountRequest>()
  readonly log: string[] = []
  /** Mount calls in the order they started / finished, for concurrency assertions. */
  readonly started: string[] = []
  readonly finished: string[] = []
  private mountFailures: { target: Match; errno: number; left: number }[] = []
  private umountFailures: { target: Match; errno: number; left: number }[] = []
  /** Real-time delay (ms) before a mount of a matching target completes. */
  readonly delays: { target: Match; ms: number }[] = []
  /** `start <target>` / `end <target>` in time order. */
  readonly events: string[] = []
  /** DM device held open by the mount at a target (a mount keeps its device open, node or not). */
  private readonly holders = new Map<string, string>()

  constructor(private readonly nodes: FakeNodeOps, private readonly dm?: FakeDmBackend) {}

  failMount(target: Match, errno = 5, times = Number.POSITIVE_INFINITY): this {
    this.mountFailures.push({ target, errno, left: times })
    return this
  }
  failUmount(target: Match, errno = 16, times = Number.POSITIVE_INFINITY): this {
    this.umountFailures.push({ target, errno, left: times })
    return this
  }

  private dmName(source: string): string | undefined {
    const n = this.nodes.nodes.get(source)
    return n && this.dm ? this.dm.nameOf(n.major, n.minor) : undefined
  }

  async mount(m: MountRequest): Promise<void> {
    this.started.push(m.target)
    this.events.push(`start ${m.target}`)
    const delay = this.delays.find((d) => matches(d.target, m.target))
    if (delay) await new Promise((r) => setTimeout(r, delay.ms))
    try {
      const f = this.mountFailures.find((x) => x.left > 0 && matches(x.target, m.target))
      if (f) {
        f.left--
        throw Object.assign(new Error(`mount ${m.source} on ${m.target}: injected errno ${f.errno}`), { errno: f.errno })
      }
      if (!(await this.nodes.exists(m.target))) throw Object.assign(new Error(`mount on ${m.target}: ENOENT (no mount point)`), { errno: 2 })
      const existing = this.mounts.get(m.target)
      if (existing && existing.fstype === m.fstype) return
      if (m.fstype !== 'overlay' && !(await this.nodes.exists(m.source))) throw Object.assign(new Error(`mount ${m.source}: ENOENT (no device node)`), { errno: 2 })
      const name = this.dmName(m.source)
      if (name) {
        this.dm!.openDevice(name)
        this.holders.set(m.target, name)
      }
      this.mounts.set(m.target, { ...m })
      this.log.push(`mount ${m.fstype} ${m.source} ${m.target}`)
    } finally {
      this.finished.push(m.target)
      this.events.push(`end ${m.target}`)
    }
  }

  async umount(target: string): Promise<void> {
    const f = this.umountFailures.find((x) => x.left > 0 && matches(x.target, target))
    if (f) {
      f.left--
      throw Object.assign(new Error(`umount ${target}: injected errno ${f.errno}`), { errno: f.errno })
    }
    const m = this.mounts.get(target)
    if (!m) throw Object.assign(new Error(`umount ${target}: EINVAL (not mounted)`), { errno: 22 })
    this.mounts.delete(target)
    const name = this.holders.get(target)
    this.holders.delete(target)
    if (name) this.dm!.closeDevice(name)
    this.log.push(`umount ${target}`)
  }
}

export class FakeDevices implements DeviceResolver {
  /** source → base device. */
  readonly base = new Map<string, string>()
  readonly resolveCalls: string[] = []
  /** Real-time delay (ms) of waitForPartition per partition path, to order failures in time. */
  readonly partitionDelays = new Map<string, number>()
  private resolveFailures = new Set<string>()

  constructor(private readonly nodes: FakeNodeOps, private readonly clock: Clock) {}

  /** Register a disk: its base node and (optionally) partition nodes that exist at once. */
  addDisk(source: string, basePath: string, partitions: readonly string[] = []): this {
    this.base.set(source, basePath)
    this.nodes.addNode(basePath)
    for (const p of partitions) this.nodes.addNode(p)
    return this
  }
  failResolve(source: string): this {
    this.resolveFailures.add(source)
    return this
  }

  async resolveBaseDevice(s: StorageLike, deadline: Deadline): Promise<string> {
    this.resolveCalls.push(s.source)
    const b = this.base.get(s.source)
    if (!b || this.resolveFailures.has(s.source)) throw new Error(`no block device for ${s.driver} ${s.source} within ${deadline.budgetMs} ms`)
    return b
  }

  async waitForPartition(path: string, deadline: Deadline): Promise<void> {
    const delay = this.partitionDelays.get(path)
    if (delay) await new Promise((r) => setTimeout(r, delay))
    await waitForPath((p) => this.nodes.exists(p), path, deadline, this.clock)
  }
}

export interface FakeStorage {
  env: StorageEnv
  dm: FakeDmBackend
  nodes: FakeNodeOps
  mounter: FakeMounter
  devices: FakeDevices
  clock: FakeClock
}

export function fakeStorageEnv(opts: { devmapper?: boolean } = {}): FakeStorage {
  const dm = new FakeDmBackend()
  const nodes = new FakeNodeOps()
  const clock = new FakeClock()
  const mounter = new FakeMounter(nodes, dm)
  const devices = new FakeDevices(nodes, clock)
  const env: StorageEnv = { logger: nullLogger, dm, nodes, mounter, devices, devmapper: opts.devmapper ?? true, clock }
  return { env, dm, nodes, mounter, devices, clock }
}

/** Verity options as runtime-rs emits them (marker, roothash, hashoffset, salt, no-superblock). */
export function verityOptions(hash: string, offset = 8192n): string[] {
  return ['X-kata.dmverity-enabled=true', `X-kata.dmverity.roothash=${hash}`, `X-kata.dmverity.hashoffset=${offset}`,
    `X-kata.dmverity.salt=${'0'.repeat(64)}`, 'X-kata.dmverity.no-superblock=false']
}

/** A GPT EROFS lower on `source`, partition `n`, optionally dm-verity protected. */
export function erofsLower(n: number | string, opts: { source?: string; verity?: boolean; mountPoint?: string; extra?: string[]; gpt?: boolean } = {}): StorageLike {
  const hash = `${String(n).padStart(2, '0')}`.repeat(32).slice(0, 64)
  return {
    driver: 'blk',
    source: opts.source ?? '02/01',
    fstype: 'erofs',
    mountPoint: opts.mountPoint ?? '/run/kata-containers/shared/containers/c1/rootfs',
    options: [
      'X-kata.multi-layer=true', 'X-kata.overlay-lower',
      ...(opts.gpt ?? true ? ['X-kata.gpt-partitioned=true', `X-kata.partition-number=${n}`] : []),
      ...(opts.verity ?? true ? verityOptions(hash) : []),
      ...(opts.extra ?? []),
    ],
  }
}

export function ext4Upper(opts: { source?: string; mountPoint?: string; extra?: string[] } = {}): StorageLike {
  return {
    driver: 'blk',
    source: opts.source ?? '03/00',
    fstype: 'ext4',
    mountPoint: opts.mountPoint ?? '/run/kata-containers/shared/containers/c1/rootfs',
    options: ['X-kata.multi-layer=true', 'X-kata.overlay-upper', 'nodev', ...(opts.extra ?? [])],
  }
}

/** What storage work left behind in the fakes for container `cid`; equals NOTHING_LEFT after a full rollback or teardown. */
export function storageLeftovers(f: FakeStorage, state: MultiLayerErofsState, cid: string) {
  return {
    dmDevices: [...f.dm.devices.keys()],
    mapperNodes: [...f.nodes.nodes.keys()].filter((n) => n.startsWith('/dev/mapper/')),
    mounts: [...f.mounter.mounts.keys()],
    runNodes: f.nodes.under('/run'),
    containerVerityDevices: state.containerVerityDevices.size,
    groups: state.groups(cid),
  }
}

export const NOTHING_LEFT: ReturnType<typeof storageLeftovers> = { dmDevices: [], mapperNodes: [], mounts: [], runNodes: [], containerVerityDevices: 0, groups: [] }
