// Host-built disks for scenarios that need block devices in the guest (multi-layer EROFS rootfs):
// directories → EROFS layers (optionally dm-verity) → one GPT disk described by a VMDK whose extents
// point at the layer files (images/cli imageBuild), attached as a read-only virtio-blk disk.
//
// No vitest here (benches use it too); scenario files get the `disks` fixture from harness/disk-test.ts:
//   const test = testWithDisks(async () => ({ layers: await buildLayerDisk([{ 'a.txt': 'A' }], { verity: true }) }))
// Temp dirs live under the runner's per-run root (removed by the CLI even if a worker dies) or the OS temp dir.
import { rmSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { imageBuild, type ImageBuildSummary, type ImageBuildOptions } from '../images/cli/index.ts'
import type { QemuDisk } from '../impl/runtime/hypervisor/qemu/cmdline.ts'
import { onExitCleanup } from '../impl/runtime/hypervisor/qemu/cleanup.ts'
import { GPT_PARTITIONED, MULTI_LAYER, OVERLAY_LOWER, guestRootfsMountPoint, partitionNumberOption, type StorageEntry } from '../impl/runtime/resource/rootfs/storage.ts'
import { KatarefError, Code } from '../impl/types/errors.ts'
import { ENV } from './env.ts'
import type { Guest } from './guest.ts'

/** A layer's files: path → content (mode 0644), or `{ content, mode }`, or `{ dir: true, mode }`. */
export type LayerFiles = Record<string, string | { content: string | Buffer; mode?: number } | { dir: true; mode?: number }>

export interface LayerDisk {
  /** Working dir (sources, layers, head, pads, descriptor). */
  dir: string
  summary: ImageBuildSummary
  /** Attach with `guestOptions: { disks: [disk] }`: VMDK descriptor, read-only, with `serial`. */
  disk: QemuDisk
  serial: string
  remove(): Promise<void>
}

export async function scenarioTempDir(prefix: string): Promise<string> {
  const root = process.env[ENV.runRoot] ?? tmpdir()
  await mkdir(root, { recursive: true })
  return mkdtemp(join(root, prefix))
}

export async function writeLayerFiles(dir: string, files: LayerFiles): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const [rel, spec] of Object.entries(files)) {
    const p = join(dir, rel)
    if (typeof spec === 'object' && 'dir' in spec) {
      await mkdir(p, { recursive: true })
      if (spec.mode !== undefined) await chmod(p, spec.mode)
      continue
    }
    await mkdir(dirname(p), { recursive: true })
    const content = typeof spec === 'string' ? spec : spec.content
    await writeFile(p, content)
    await chmod(p, typeof spec === 'string' ? 0o644 : (spec.mode ?? 0o644))
  }
}

let serials = 0

/**
 * Builds the layers (index 0 = partition 1) and their GPT VMDK disk. `beforeAttach` may change the
 * files (e.g. tamper with a data block) after the verity trees were computed.
 */
export async function buildLayerDisk(layers: readonly LayerFiles[], opts: Omit<ImageBuildOptions, 'out'> & {
  serial?: string
  beforeAttach?: (summary: ImageBuildSummary) => Promise<void>
} = {}): Promise<LayerDisk> {
  const dir = await scenarioTempDir('layers-')
  try {
    const dirs: string[] = []
    for (const [i, files] of layers.entries()) {
      const d = join(dir, 'src', String(i))
      await writeLayerFiles(d, files)
      dirs.push(d)
    }
    const { serial: _s, beforeAttach, ...buildOpts } = opts
    const summary = await imageBuild(dirs, { ...buildOpts, erofs: { allRoot: true, ...(opts.erofs ?? {}) }, out: join(dir, 'disk') })
    if (beforeAttach) await beforeAttach(summary)
    // virtio-blk serials are at most 20 bytes.
    const serial = opts.serial ?? `krl-${process.pid % 100000}-${++serials}`
    // Also gone on exit or SIGINT/SIGTERM/SIGHUP of this process (the qemu launcher's last-chance hooks).
    const unregister = onExitCleanup(() => rmSync(dir, { recursive: true, force: true }))
    return {
      dir,
      summary,
      serial,
      disk: { path: summary.descriptor, format: 'vmdk', readOnly: true, serial },
      remove: async () => {
        unregister()
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true })
    throw e
  }
}

/** The guest's whole-disk node and PCI path (`02`, Kata's storage `source` for `blk`) of the disk with `serial`. */
export async function findGuestDisk(guest: Pick<Guest, 'debug'>, serial: string): Promise<{ dev: string; pciPath: string }> {
  const r = await guest.debug.run(`for b in /sys/block/vd*; do [ "$(cat $b/serial 2>/dev/null)" = '${serial}' ] && readlink -f $b; done`)
  const m = /\/pci0000:([0-9a-f]{2})\/((?:[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\/)+)virtio\d+\/block\/(vd[a-z]+)/.exec(r.stdout)
  if (!m) throw new KatarefError(`no guest disk with serial ${serial}: ${r.stdout.trim() || '(nothing)'}`, Code.NOT_FOUND)
  const slots = m[2]!.split('/').filter(Boolean).map((bdf) => bdf.split(':')[2]!.slice(0, 2))
  return { dev: `/dev/${m[3]}`, pciPath: slots.join('/') }
}

export interface StorageOptions {
  /** Container id: the mount point is the container rootfs path. */
  cid: string
  /** Kata `source` of the disk (PCI path). */
  pciPath: string
  /** Which layers (summary.layers indexes) to include; default all. */
  layers?: readonly number[]
  /** Send the dm-verity options (default true when the layer has verity). */
  verity?: boolean
  /** Extra options per layer index (e.g. a wrong roothash, a failpoint). */
  extra?: (layerIndex: number) => string[]
  /** Replace option values per layer (applied after `extra`). */
  map?: (layerIndex: number, options: string[]) => string[]
}

/** The Storage entries the runtime would send for these partitions (host spec §12). */
export function multiLayerStorages(summary: ImageBuildSummary, o: StorageOptions): StorageEntry[] {
  const which = o.layers ?? summary.layers.map((_, i) => i)
  return which.map((i) => {
    const l = summary.layers[i]!
    let options = [OVERLAY_LOWER, MULTI_LAYER, GPT_PARTITIONED, partitionNumberOption(l.partition), ...((o.verity ?? true) ? l.dmverityOptions : []), ...(o.extra?.(i) ?? [])]
    if (o.map) options = o.map(i, options)
    return { driver: 'blk', driverOptions: [], source: o.pciPath, fstype: 'erofs', options, mountPoint: guestRootfsMountPoint(o.cid) }
  })
}

/** What the witness sees of device-mapper and mounts: dm devices (sysfs), /dev/mapper nodes, mounts. */
export async function dmSnapshot(guest: Pick<Guest, 'debug'>): Promise<{ dm: { dev: string; name: string; majMin: string }[]; nodes: string[]; mounts: string[] }> {
  const dm = await guest.debug.run('for d in /sys/block/dm-*; do [ -e "$d/dm/name" ] && echo "${d##*/} $(cat $d/dm/name) $(cat $d/dev)"; done; true')
  const nodes = await guest.debug.run('ls /dev/mapper 2>/dev/null | grep -v "^control$"; true')
  const mounts = await guest.debug.run("awk '{print $5, $(NF-2), $(NF-1)}' /proc/self/mountinfo | grep -E 'multi-layer|kata-verity|passthrough|/dev/vd[b-z]' ; true")
  return {
    dm: dm.stdout.split('\n').filter(Boolean).map((l) => { const [dev, name, majMin] = l.split(' '); return { dev: dev!, name: name!, majMin: majMin! } }),
    nodes: nodes.stdout.split('\n').filter(Boolean),
    mounts: mounts.stdout.split('\n').filter(Boolean),
  }
}

/** `kataref agent dm-status` in the guest: each DM device's table and status lines (DM_TABLE_STATUS). */
export async function dmStatus(guest: Pick<Guest, 'debug'>): Promise<{ name: string; table: string[]; status: string[] }[]> {
  const r = await guest.debug.run('node /usr/lib/kataref/agent.mjs dm-status', { timeoutMs: 60_000 })
  if (r.exitCode !== 0) throw new KatarefError(`dm-status failed (${r.exitCode}): ${r.stdout}`, Code.INTERNAL)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { name: string; table: string[]; status: string[] }[]
}


/** A minimal OCI spec for CreateContainer on a multi-layer rootfs (the init process is created gated, never started here). */
export function rootfsOci(rootfs: string, args: string[] = ['/bin/tool']) {
  return { Process: { Args: args, Cwd: '/', Env: ['PATH=/bin:/usr/bin'] }, Root: { Path: rootfs, Readonly: false } }
}

/** Nothing of a container's multi-layer rootfs is left: no dm device, /dev/mapper node, mount, or scratch dir. */
export async function expectNothingLeft(guest: Pick<Guest, 'debug'>, cid: string): Promise<{ ok: boolean; details: string }> {
  const snap = await dmSnapshot(guest)
  const dirs = await guest.debug.run(`ls -d /run/kata-containers/${cid} /run/kata-containers/shared/containers/passthrough/${cid}/rootfs 2>/dev/null; true`)
  const left = { ...snap, dirs: dirs.stdout.split('\n').filter(Boolean) }
  const ok = left.dm.length === 0 && left.nodes.length === 0 && left.mounts.length === 0 && left.dirs.length === 0
  return { ok, details: JSON.stringify(left) }
}

/**
 * The agent's JSON log lines on the guest console whose `msg` matches, from the whole console log
 * (the host-side file), so counts taken before and after an RPC never depend on a tail window.
 */
export async function agentLogLines(guest: Pick<Guest, 'consoleLogPath'>, msg: RegExp): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = []
  for (const l of (await readFile(guest.consoleLogPath, 'utf8')).split('\n')) {
    const t = l.trim()
    if (!t.startsWith('{')) continue
    try {
      const j = JSON.parse(t) as Record<string, unknown>
      if (typeof j.msg === 'string' && msg.test(j.msg)) out.push(j)
    } catch {
      /* a console line that only looks like JSON */
    }
  }
  return out
}

export interface RuntimeRootfsDisk extends LayerDisk {
  cid: string
  /** The Storage entries the runtime's ErofsRootfs produced, with the disk's real guest PCI path as `source`. */
  storages(pciPath: string): StorageEntry[]
}

/**
 * The runtime's own path for a container rootfs (impl/runtime/resource/rootfs ErofsRootfs, host spec §12):
 * containerd-style mounts (EROFS layers with their `X-containerd.dmverity=` sidecars + an overlay) →
 * GPT head/pads in the container dir → one VMDK disk → Storage entries. The disk is attached at boot
 * instead of hot-plugged, so the PCI path in `source` is filled in once the guest shows where it is.
 */
export async function buildRuntimeRootfsDisk(layers: readonly LayerFiles[], cid: string): Promise<RuntimeRootfsDisk> {
  const built = await buildLayerDisk(layers, { verity: true })
  const runDir = join(built.dir, 'run')
  const descriptor = join(built.dir, 'runtime-disk.vmdk')
  try {
    const { ErofsRootfs } = await import('../impl/runtime/resource/rootfs/index.ts')
    const { renderVmdkDescriptor } = await import('../images/vmdk/index.ts')
    const mounts = [
      ...built.summary.layers.map((l) => ({ fsType: 'erofs', source: l.path, options: ['ro', `X-containerd.dmverity=${l.verity!.sidecar}`] })),
      { fsType: 'overlay', source: 'overlay', options: ['X-containerd.mkdir.path={{ mount 0 }}/upper/etc/created:0755'] },
    ]
    const rootfs = await ErofsRootfs.create({
      sid: 'sb', cid, mounts, blockDriver: 'virtio-blk-pci', runDir,
      devices: {
        attachBlock: async (cfg) => {
          if (!cfg.vmdk) throw new KatarefError('expected a VMDK layout', Code.INTERNAL)
          await writeFile(descriptor, renderVmdkDescriptor(cfg.vmdk.extents.map((e) => ({ path: e.pathOnHost, sectors: e.sectors, fileOffset: e.fileOffset }))))
          return { deviceId: 'rootfs-disk', pciPath: 'unknown-until-boot' }
        },
        removeDevice: async () => {},
      },
    })
    const serial = `krr-${process.pid % 100000}-${++serials}`
    return {
      ...built,
      cid,
      serial,
      disk: { path: descriptor, format: 'vmdk', readOnly: true, serial },
      storages: (pciPath) => rootfs.getStorages().map((s) => ({ ...s, source: pciPath })),
      remove: async () => {
        await rootfs.cleanup()
        await built.remove()
      },
    }
  } catch (e) {
    await built.remove()
    throw e
  }
}
