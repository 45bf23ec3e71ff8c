// Assembles a GPT disk from EROFS layer files without copying them: a 1 MiB head image, sparse
// zero padding files between partitions, and a VMDK extent list (and optionally a descriptor file)
// that references every layer file in place (§2–§6, §13).
import { open, stat, truncate, writeFile, rename, rm, access, mkdir } from 'node:fs/promises'
import { join, basename, dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { InvalidInputError, KatarefError, Code, errorMessage } from '../../impl/types/errors.ts'
import { nullLogger, type Logger } from '../../impl/types/logger.ts'
import { gptLayout, paddingGaps, SECTOR_SIZE, type GptLayout, type LayerInput } from './layout.ts'
import { renderHeadImage, renderBackupGpt, randomHeadGuids, type HeadGuids } from './head-image.ts'
import { GptDiskFiles } from './disk-files.ts'
import { gptDiskExtents, type VmdkExtent } from '../vmdk/extents.ts'
import { renderVmdkDescriptor } from '../vmdk/descriptor.ts'

export const GPT_HEAD_FILE = 'gpt_meta_head.img'
/** Opt-in backup GPT (kataref only; upstream has no tail extent). */
export const GPT_TAIL_FILE = 'gpt_meta_tail.img'
/** Reserved identifier upstream stores as the disk's host path; at HEAD no file is made there. */
export const MERGED_VMDK_FILE = 'merged_fs.vmdk'
export const padFileName = (index: number) => `pad-${index}.img`

export interface AssembleGptDiskOptions {
  /** Where head and padding files go (the container directory); created with parents. */
  containerDir: string
  /** EROFS layer files in partition order (partition 1 = topmost lower layer). */
  layers: readonly string[]
  /** Inject GUIDs for reproducible heads (tests); random v4 otherwise. */
  guids?: HeadGuids
  /** Opt-in: a valid backup GPT as a 33-sector tail extent (default: none, like upstream). */
  backupGpt?: boolean
  /** Opt-in: protective MBR sized to the virtual disk (default: upstream's oversized value). */
  rightSizedMbr?: boolean
  /** Also write a descriptor with host paths here (for qemu-img and humans); tracked for cleanup. */
  descriptorPath?: string
  logger?: Logger
}

export interface GptVmdkDisk {
  layout: GptLayout
  /** Layer paths that became partitions (empty files skipped), in partition order. */
  layers: string[]
  headPath: string
  padPaths: string[]
  /** The backup GPT tail file when opted in, else null. */
  tailPath: string | null
  extents: VmdkExtent[]
  /** Descriptor text with host paths. */
  descriptor: string
  descriptorPath: string | null
  virtualTotalSectors: number
  files: GptDiskFiles
}

/** stat()s the layers (symlinks followed); empty files are skipped with a warning, as upstream does. */
export async function statLayers(paths: readonly string[], logger: Logger = nullLogger): Promise<LayerInput[]> {
  const kept: LayerInput[] = []
  for (const p of paths) {
    const st = await stat(p).catch((e: unknown) => {
      throw new InvalidInputError(`EROFS layer ${p}`, `gptdisk: failed to get size of EROFS layer: ${p} (EROFS layer path not accessible: ${p})`, { path: p }, { cause: e })
    })
    if (!st.isFile()) throw new InvalidInputError(`EROFS layer ${p}`, `EROFS layer path is not a regular file: ${p}`, { path: p })
    if (st.size === 0) {
      logger.warn({ path: p }, 'skipping empty EROFS layer: no partition for it')
      continue
    }
    kept.push({ path: p, sizeBytes: st.size })
  }
  if (kept.length === 0) throw new InvalidInputError('EROFS layers', 'gptdisk: no valid EROFS layers found for GPT VMDK')
  return kept
}

/** Creates a sparse zero file of `bytes` (no data blocks are written). */
export async function createPaddingFile(path: string, bytes: number): Promise<void> {
  if (bytes <= 0) throw new InvalidInputError(`padding file ${path}`, 'cannot create zero-size padding file')
  const fh = await open(path, 'w', 0o644)
  await fh.close()
  await truncate(path, bytes)
}

async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    await writeFile(tmp, data, { mode: 0o644 })
    await rename(tmp, path)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
}

export async function assembleGptDisk(opts: AssembleGptDiskOptions): Promise<GptVmdkDisk> {
  const logger = opts.logger ?? nullLogger
  const layers = await statLayers(opts.layers, logger)
  const layout = gptLayout(layers, { backupGpt: opts.backupGpt ?? false })
  const guids = opts.guids ?? randomHeadGuids(layout.partitions.length)
  const head = renderHeadImage(layout, guids, { rightSizedMbr: opts.rightSizedMbr ?? false })
  await mkdir(opts.containerDir, { recursive: true })
  const files = new GptDiskFiles(opts.containerDir)
  const headPath = join(opts.containerDir, GPT_HEAD_FILE)
  const padPaths: string[] = []
  try {
    files.track(headPath)
    await writeFileAtomic(headPath, head)
    for (const gap of paddingGaps(layout)) {
      const p = join(opts.containerDir, padFileName(gap.index))
      files.track(p)
      await createPaddingFile(p, gap.sectors * SECTOR_SIZE)
      padPaths.push(p)
    }
    let tailPath: string | null = null
    if (layout.backupEntriesLba !== null) {
      tailPath = join(opts.containerDir, GPT_TAIL_FILE)
      files.track(tailPath)
      await writeFileAtomic(tailPath, renderBackupGpt(layout, guids))
    }
    const extents = gptDiskExtents(layout, headPath, (i) => join(opts.containerDir, padFileName(i)), tailPath ?? undefined)
    const descriptor = renderVmdkDescriptor(extents)
    if (opts.descriptorPath) {
      files.track(opts.descriptorPath)
      await writeFileAtomic(opts.descriptorPath, descriptor)
    }
    // A pad-{idx}.img left by an earlier run for an index that needs none now is stale: track it so
    // cleanup removes it too (upstream a08267faaf). Not part of the rollback above: we did not make it.
    for (let idx = 1; idx < layout.partitions.length; idx++) {
      const p = join(opts.containerDir, padFileName(idx))
      if (!padPaths.includes(p) && (await access(p).then(() => true, () => false))) files.track(p)
    }
    return { layout, layers: layers.map((l) => l.path), headPath, padPaths, tailPath, extents, descriptor, descriptorPath: opts.descriptorPath ?? null, virtualTotalSectors: layout.virtualTotalSectors, files }
  } catch (e) {
    // Nothing half-made stays behind: remove what this call created.
    await files.cleanup().catch(() => undefined)
    if (e instanceof KatarefError) throw e
    throw new KatarefError(`gptdisk: failed to generate GPT VMDK in ${opts.containerDir}: ${errorMessage(e)}`, Code.INTERNAL, { containerDir: opts.containerDir }, { cause: e })
  }
}
