// Builds one read-only EROFS layer image from a directory with `mkfs.erofs`, reproducibly:
// same tree in → same bytes out (fixed timestamp and UUID, optional root ownership).
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { execa } from 'execa'
import { InvalidInputError, KatarefError, ToolError, errorMessage } from '../../impl/types/errors.ts'

/** Default filesystem UUID: fixed so that rebuilding a layer reproduces it byte for byte. */
export const EROFS_DEFAULT_UUID = '6b617461-7265-4600-8000-000000000001'

export interface ErofsBuildOptions {
  /** UNIX time stamped on every inode (mkfs.erofs -T). Default 0. */
  timestamp?: number
  /** Make every file owned by root:root (--all-root). Default false (keep the source owners). */
  allRoot?: boolean
  /** Filesystem UUID (-U). Default EROFS_DEFAULT_UUID. */
  uuid?: string
  /** Optional compressor (-z), e.g. `lz4hc`; default uncompressed, which the guest kernel always reads. */
  compressor?: string
  /** mkfs.erofs binary (default from PATH). */
  mkfsErofs?: string
}

export interface ErofsLayer {
  path: string
  sizeBytes: number
  uuid: string
}

export async function buildErofsLayer(sourceDir: string, outPath: string, opts: ErofsBuildOptions = {}): Promise<ErofsLayer> {
  const st = await stat(sourceDir).catch((e: unknown) => {
    throw new InvalidInputError(`EROFS source directory ${sourceDir}`, 'does not exist or cannot be read', { path: sourceDir }, { cause: e })
  })
  if (!st.isDirectory()) throw new InvalidInputError(`EROFS source directory ${sourceDir}`, 'is not a directory', { path: sourceDir })
  const timestamp = opts.timestamp ?? 0
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new InvalidInputError('EROFS timestamp', `${timestamp} is not a non-negative integer`)
  const uuid = opts.uuid ?? EROFS_DEFAULT_UUID
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid)) throw new InvalidInputError('EROFS UUID', `${JSON.stringify(uuid)} is not a canonical UUID`)
  if (opts.compressor !== undefined && !/^[a-z0-9]+(,[0-9]+)?$/.test(opts.compressor)) throw new InvalidInputError('EROFS compressor', `${JSON.stringify(opts.compressor)} is not a compressor name`)

  await mkdir(dirname(outPath), { recursive: true })
  // Build next to the destination and rename, so a failed build never leaves a half image at outPath.
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(4).toString('hex')}.tmp`)
  const tool = opts.mkfsErofs ?? 'mkfs.erofs'
  const args = [`-T${timestamp}`, `-U${uuid}`, '--quiet']
  if (opts.allRoot) args.push('--all-root')
  if (opts.compressor) args.push(`-z${opts.compressor}`)
  args.push(tmp, sourceDir)
  try {
    const r = await execa(tool, args, { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' } })
    if (r.failed) {
      const code = (r as { code?: string }).code
      if (code === 'ENOENT') throw new ToolError(tool, 'not found (install erofs-utils)', { args })
      throw new ToolError(tool, `failed with exit code ${r.exitCode ?? 'none'} building ${outPath} from ${sourceDir}: ${(r.stderr || r.stdout || '').toString().trim().slice(0, 2000)}`, { args, exitCode: r.exitCode })
    }
    await rename(tmp, outPath)
  } catch (e) {
    await rm(tmp, { force: true })
    if (e instanceof KatarefError) throw e
    throw new ToolError(tool, `could not run: ${errorMessage(e)}`, { args }, { cause: e })
  }
  return { path: outPath, sizeBytes: (await stat(outPath)).size, uuid }
}
