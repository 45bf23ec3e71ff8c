// Which rootfs mount lists are "multi-layer EROFS", and which disk shape each one gets (§1).
import { InvalidInputError } from '../../../types/errors.ts'

export interface RootfsMount {
  fsType: string
  source: string
  options: string[]
}

/** 128 EROFS partitions + 1 writable layer. */
export const MAX_MULTI_LAYER_BLOCK_DEVICES = 129
const OVERLAY_TYPES = ['overlay', 'format/overlay', 'format/mkdir/overlay']

export const isErofs = (m: RootfsMount) => m.fsType.toLowerCase() === 'erofs'
export const isExt4 = (m: RootfsMount) => m.fsType.toLowerCase() === 'ext4'
export const isOverlayLike = (m: RootfsMount) => OVERLAY_TYPES.includes(m.fsType.toLowerCase())
/** mkdir directives are honoured only on exactly-spelled overlay types (case-sensitive, §12). */
export const isOverlayExact = (m: RootfsMount) => OVERLAY_TYPES.includes(m.fsType)

export function isMultiLayerErofs(mounts: readonly RootfsMount[]): boolean {
  return mounts.length >= 2 && mounts.some(isErofs) && mounts.some(isOverlayLike)
}

export function checkBlockDeviceCount(mounts: readonly RootfsMount[]): void {
  const n = mounts.filter((m) => isErofs(m) || isExt4(m)).length
  if (n > MAX_MULTI_LAYER_BLOCK_DEVICES) {
    throw new InvalidInputError('rootfs mounts', `exceeded maximum block devices for multi-layer EROFS: ${n} > ${MAX_MULTI_LAYER_BLOCK_DEVICES}`, { count: n })
  }
}

export type ErofsMode =
  /** ≥ 2 EROFS mounts: one GPT disk, a partition per layer. */
  | { kind: 'gpt'; layers: RootfsMount[] }
  /** One EROFS mount, no `device=`: the layer file itself, raw. */
  | { kind: 'single'; layer: RootfsMount }
  /** One EROFS mount with `device=PATH` blobs: a VMDK concatenating source and blobs, no GPT. */
  | { kind: 'fsmerge'; layer: RootfsMount; devices: string[] }

export function deviceOptions(m: RootfsMount): string[] {
  return m.options.filter((o) => o.startsWith('device=')).map((o) => o.slice('device='.length))
}

export function selectErofsMode(mounts: readonly RootfsMount[]): ErofsMode | undefined {
  const layers = mounts.filter(isErofs)
  if (layers.length === 0) return undefined
  if (layers.length > 1) {
    // Upstream (§15.5) silently drops `device=` blobs here, so the guest sees a filesystem without
    // them. A merged (fsmeta) mount cannot be a GPT partition of its own: refuse instead.
    const merged = layers.find((m) => deviceOptions(m).length > 0)
    if (merged) {
      throw new InvalidInputError(`EROFS mount ${merged.source}`, 'has device= blobs (fsmerge) but is mixed with other EROFS mounts; GPT mode would drop the blobs')
    }
    return { kind: 'gpt', layers }
  }
  const layer = layers[0]!
  const devices = deviceOptions(layer)
  return devices.length > 0 ? { kind: 'fsmerge', layer, devices } : { kind: 'single', layer }
}
