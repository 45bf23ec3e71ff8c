// `kataref image build`: directories → EROFS layers (optionally dm-verity protected the way
// containerd's differ does it) → one GPT VMDK disk whose partitions are those layer files in place.
// Returns a JSON-able summary; a scenario can build its multi-layer disk with this one call.
import { rm, stat, truncate, writeFile, readdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { InvalidInputError } from '../../impl/types/errors.ts'
import { buildErofsLayer, type ErofsBuildOptions } from '../erofs/index.ts'
import { formatVerity } from '../verity/index.ts'
import { assembleGptDisk, type HeadGuids } from '../gpt/index.ts'
import { readDmVeritySidecar, dmVerityPartitionOptions, type DmVerityQuirks } from '../../impl/types/dmverity/index.ts'

export interface ImageBuildOptions {
  /** Output directory: `snapshots/<n>/layer.erofs`, head, pads and `disk.vmdk` go here. */
  out: string
  /** Append a dm-verity superblock + tree to each layer and write its `.dmverity` sidecar. */
  verity?: boolean
  /** dm-verity block size (4096 like containerd; 512 = its tar-index mode). */
  verityBlockSize?: number
  erofs?: ErofsBuildOptions
  guids?: HeadGuids
  /** Opt-ins beyond upstream's byte-compatible head: a valid backup GPT, a right-sized MBR. */
  backupGpt?: boolean
  rightSizedMbr?: boolean
  dmVerityQuirks?: DmVerityQuirks
  /** Progress lines; default: stderr when the layers total more than 64 MiB, else silent. */
  progress?: (line: string) => void
}

export interface ImageBuildLayer {
  partition: number
  sourceDir: string
  path: string
  sizeBytes: number
  startLba: number
  endLba: number
  name: string
  verity: { roothash: string; hashoffset: number; salt: string; sidecar: string } | null
  /** What the agent gets for this partition besides the overlay markers (§9). */
  dmverityOptions: string[]
}

export interface ImageBuildSummary {
  out: string
  descriptor: string
  head: string
  pads: string[]
  /** Backup GPT tail file when opted in. */
  tail: string | null
  virtualSectors: number
  virtualSizeBytes: number
  layers: ImageBuildLayer[]
  /** Layer bytes copied while assembling the disk: always 0, layers are referenced in place. */
  layerBytesCopied: 0
}

export const DISK_DESCRIPTOR_FILE = 'disk.vmdk'
const LARGE_INPUT_BYTES = 64 << 20

export async function imageBuild(dirs: readonly string[], opts: ImageBuildOptions): Promise<ImageBuildSummary> {
  if (dirs.length === 0) throw new InvalidInputError('image build directories', 'none given')
  if (!opts.out) throw new InvalidInputError('image build out', 'no output directory given')
  const out = resolve(opts.out)
  const outExisted = await stat(out).then(() => true, () => false)
  if (outExisted && (await readdir(out)).length > 0) throw new InvalidInputError(`image build out ${out}`, 'exists and is not empty')
  const B = opts.verityBlockSize ?? 4096
  let progress = opts.progress
  try {
    const layers: { sourceDir: string; path: string; verity: ImageBuildLayer['verity'] }[] = []
    let total = 0
    for (const [i, d] of dirs.entries()) {
      const dirPath = resolve(d)
      const path = join(out, 'snapshots', String(i + 1), 'layer.erofs')
      const built = await buildErofsLayer(dirPath, path, opts.erofs)
      total += built.sizeBytes
      if (!progress && total > LARGE_INPUT_BYTES) progress = (l) => process.stderr.write(`${l}\n`)
      progress?.(`layer ${i + 1}/${dirs.length}: ${dirPath} → ${built.sizeBytes} bytes EROFS`)
      let verity: ImageBuildLayer['verity'] = null
      if (opts.verity) {
        // containerd's differ: data padded to whole blocks, superblock at hashoffset, tree after it.
        const hashoffset = Math.ceil(built.sizeBytes / B) * B
        await truncate(path, hashoffset)
        const salt = Buffer.alloc(32)
        const r = await formatVerity(path, { dataBlockSize: B, hashBlockSize: B, salt, hashOffset: hashoffset })
        const sidecar = `${path}.dmverity`
        await writeFile(sidecar, JSON.stringify({ roothash: r.rootHash, hashoffset }, null, 2))
        verity = { roothash: r.rootHash, hashoffset, salt: r.salt, sidecar }
        progress?.(`layer ${i + 1}/${dirs.length}: dm-verity root ${r.rootHash}`)
      }
      layers.push({ sourceDir: dirPath, path, verity })
    }
    const disk = await assembleGptDisk({
      containerDir: out,
      layers: layers.map((l) => l.path),
      descriptorPath: join(out, DISK_DESCRIPTOR_FILE),
      ...(opts.guids ? { guids: opts.guids } : {}),
      backupGpt: opts.backupGpt ?? false,
      rightSizedMbr: opts.rightSizedMbr ?? false,
    })
    progress?.(`disk: ${disk.virtualTotalSectors} sectors, ${disk.extents.length} extents → ${join(out, DISK_DESCRIPTOR_FILE)}`)
    const summaryLayers: ImageBuildLayer[] = []
    for (const p of disk.layout.partitions) {
      const l = layers.find((x) => x.path === p.path)!
      const dmverityOptions = l.verity
        ? await dmVerityPartitionOptions({ sidecar: await readDmVeritySidecar(l.verity.sidecar), layerPath: p.path, ...(opts.dmVerityQuirks ? { quirks: opts.dmVerityQuirks } : {}) })
        : []
      summaryLayers.push({ partition: p.number, sourceDir: l.sourceDir, path: p.path, sizeBytes: p.sizeBytes, startLba: p.startLba, endLba: p.endLba, name: p.name, verity: l.verity, dmverityOptions })
    }
    return {
      out,
      descriptor: join(out, DISK_DESCRIPTOR_FILE),
      head: disk.headPath,
      pads: disk.padPaths,
      tail: disk.tailPath,
      virtualSectors: disk.virtualTotalSectors,
      virtualSizeBytes: disk.virtualTotalSectors * 512,
      layers: summaryLayers,
      layerBytesCopied: 0,
    }
  } catch (e) {
    // Leave nothing half-built: the output directory was empty (or absent) when we started.
    if (outExisted) {
      for (const entry of await readdir(out).catch(() => [] as string[])) await rm(join(out, entry), { recursive: true, force: true })
    } else {
      await rm(out, { recursive: true, force: true })
    }
    throw e
  }
}

/** Removes everything `imageBuild` made. */
export async function imageRemove(summary: Pick<ImageBuildSummary, 'out'>): Promise<void> {
  await rm(summary.out, { recursive: true, force: true })
}
