// `experimental = ["force_guest_pull"]` (spec §10; runtime-rs resource manager_inner.rs +
// kata-types mount.rs): the container's rootfs mounts are dropped and replaced by one mount whose
// only option is `io.katacontainers.volume=` + base64(JSON KataVirtualVolume), telling the agent
// to pull the image inside the guest.
import { forceGuestPullEnabled } from '../../types/config/index.ts'

export const KATA_VIRTUAL_VOLUME_OPTION = 'io.katacontainers.volume'
export const KATA_VIRTUAL_VOLUME_IMAGE_GUEST_PULL = 'image_guest_pull'

/** A rootfs mount as containerd passes it to the shim. */
export interface RootfsMount {
  type: string
  source: string
  target: string
  options: string[]
}

/** The JSON form of a virtual volume; only set fields are serialised (serde skip_serializing_if). */
export interface KataVirtualVolume {
  volume_type: string
  source?: string
  fs_type?: string
  options?: string[]
}

/** `io.katacontainers.volume=<base64(JSON)>`. */
export function kataVirtualVolumeOption(volume: KataVirtualVolume): string {
  const json: Record<string, unknown> = { volume_type: volume.volume_type }
  if (volume.source) json.source = volume.source
  if (volume.fs_type) json.fs_type = volume.fs_type
  if (volume.options?.length) json.options = volume.options
  return `${KATA_VIRTUAL_VOLUME_OPTION}=${Buffer.from(JSON.stringify(json)).toString('base64')}`
}

/** The single mount that replaces the rootfs mounts under force_guest_pull. */
export function guestPullRootfsMount(): RootfsMount {
  return { type: '', source: '', target: '', options: [kataVirtualVolumeOption({ volume_type: KATA_VIRTUAL_VOLUME_IMAGE_GUEST_PULL })] }
}

/**
 * Rootfs mounts to use for a container: replaced under force_guest_pull, else passed through
 * unchanged. `runtime` is the `[runtime]` section, or just its `experimental` list.
 */
export function rootfsMountsForContainer(
  mounts: readonly RootfsMount[],
  runtime: readonly string[] | { experimental: readonly string[]; experimentalForceGuestPull?: boolean },
): RootfsMount[] {
  const on = forceGuestPullEnabled(Array.isArray(runtime) ? { experimental: runtime as readonly string[] } : (runtime as { experimental: readonly string[] }))
  return on ? [guestPullRootfsMount()] : [...mounts]
}
