// Multi-layer EROFS option vocabulary (§2) and group classification/ordering (§3.2–§3.4).
import { U32_MAX, hasDmverityMarker, parseStrictUnsigned } from '../../dmverity/index.ts'
import { MultiLayerErofsError } from './multi-layer-errors.ts'
import type { StorageLike } from './storage-context.ts'

export const MULTI_LAYER_EROFS_DRIVER = 'erofs.multi-layer'
export const OPT_MULTI_LAYER = 'X-kata.multi-layer=true'
export const OPT_OVERLAY_UPPER = 'X-kata.overlay-upper'
export const OPT_OVERLAY_LOWER = 'X-kata.overlay-lower'
export const OPT_GPT_PARTITIONED = 'X-kata.gpt-partitioned=true'
export const OPT_PARTITION_NUMBER = 'X-kata.partition-number='
export const OPT_MKDIR_PATH = 'X-kata.mkdir.path='
export const MOUNT_0 = '{{ mount 0 }}'
export const MOUNT_1 = '{{ mount 1 }}'
/** Missing/unparsable partition numbers sort last (u32::MAX). */
export const PARTITION_SORT_LAST = Number(U32_MAX)

export function isMultiLayerStorage(s: StorageLike): boolean {
  return s.driver === MULTI_LAYER_EROFS_DRIVER || s.options.includes(OPT_MULTI_LAYER)
}

export function isGptPartitioned(s: StorageLike): boolean {
  return s.options.includes(OPT_GPT_PARTITIONED)
}

export function hasVerityMarker(s: StorageLike): boolean {
  return hasDmverityMarker(s.options)
}

/** First `X-kata.partition-number=` wins; u32 with optional `+`; undefined if missing or unparsable. */
export function partitionNumber(s: StorageLike): number | undefined {
  const opt = s.options.find((o) => o.startsWith(OPT_PARTITION_NUMBER))
  if (opt === undefined) return undefined
  const n = parseStrictUnsigned(opt.slice(OPT_PARTITION_NUMBER.length), U32_MAX)
  return n === undefined ? undefined : Number(n)
}

/** `<base>p<N>` when the base ends in a digit, else `<base><N>` (§4.3, B34). */
export function partitionPath(base: string, n: number): string {
  return /[0-9]$/.test(base) ? `${base}p${n}` : `${base}${n}`
}

export interface LowerLayer {
  /** Position after the §3.3 sort: 0 is the top-most overlay layer. */
  index: number
  storage: StorageLike
}

export interface MkdirDirective {
  spec: string
  path: string
  /** `{{ mount 1 }}` directives run after the lowers are mounted (§3.5 step 7). */
  deferred: boolean
}

export interface MultiLayerGroup {
  upper?: StorageLike
  lowers: LowerLayer[]
  mkdirs: MkdirDirective[]
  /** Unique mount points of all group members, first-seen order. */
  processedMountPoints: string[]
  /** The overlay target (§3.4). */
  target: string
}

function classifyError(message: string, context: Record<string, unknown> = {}): MultiLayerErofsError {
  return new MultiLayerErofsError(message, 'classify', undefined, context)
}

export function parseMkdirDirective(spec: string): MkdirDirective {
  const path = spec.split(':')[0] ?? ''
  if (path === '') throw classifyError(`invalid X-kata.mkdir.path directive: '${spec}'`)
  if (path.includes('\0')) throw classifyError(`invalid X-kata.mkdir.path directive: '${spec}' contains NUL`)
  return { spec, path, deferred: path.includes(MOUNT_1) }
}

/** Pick the group's members out of the whole request list and classify them (§3.2–§3.4). */
export function classifyMultiLayerGroup(storages: readonly StorageLike[]): MultiLayerGroup {
  let upper: StorageLike | undefined
  const lowers: StorageLike[] = []
  const mkdirs: MkdirDirective[] = []
  const processed: string[] = []
  for (const s of storages) {
    if (!isMultiLayerStorage(s)) continue
    if (!processed.includes(s.mountPoint)) processed.push(s.mountPoint)
    for (const o of s.options) if (o.startsWith(OPT_MKDIR_PATH)) mkdirs.push(parseMkdirDirective(o.slice(OPT_MKDIR_PATH.length)))
    const explicitUpper = s.options.includes(OPT_OVERLAY_UPPER)
    if (explicitUpper && s.fstype !== 'ext4') {
      throw classifyError(`multi-layer erofs explicit upper layer must be ext4, got '${s.fstype}'; source ${s.source}`, { source: s.source })
    }
    if (s.fstype === 'ext4' && (explicitUpper || s.options.includes(OPT_MULTI_LAYER))) {
      if (upper) throw classifyError('multi-layer erofs currently supports exactly one explicit ext4 upper layer')
      upper = s
    } else if (s.options.includes(OPT_OVERLAY_LOWER) || (s.fstype === 'erofs' && s.options.includes(OPT_MULTI_LAYER))) {
      lowers.push(s)
    }
  }
  if (lowers.length === 0) throw classifyError('multi-layer erofs missing erofs lower layer storage')
  const sorted = lowers.some(isGptPartitioned)
    ? lowers.map((s, i) => ({ s, i, n: partitionNumber(s) ?? PARTITION_SORT_LAST })).sort((a, b) => a.n - b.n || a.i - b.i).map((x) => x.s)
    : lowers
  const target = (upper ?? sorted[0]!).mountPoint
  return { ...(upper ? { upper } : {}), lowers: sorted.map((storage, index) => ({ index, storage })), mkdirs, processedMountPoints: processed, target }
}

export function validateCid(cid: string): void {
  if (cid === '' || cid.includes('/') || cid.includes('\\') || cid.includes('..') || cid.includes('\0')) {
    throw new MultiLayerErofsError(`invalid container id for multi-layer erofs scratch dir: '${cid}'`, 'prepare', undefined, { cid }, { code: 3 })
  }
}

export function validateTarget(target: string): void {
  if (target === '' || !target.startsWith('/') || target.split('/').includes('..') || target.includes('\0')) {
    throw new MultiLayerErofsError(`invalid multi-layer erofs mount point: '${target}'`, 'prepare', undefined, { target }, { code: 3 })
  }
}
