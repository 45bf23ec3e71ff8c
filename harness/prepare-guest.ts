// Builds (or reuses) the guest images once per run, in the runner's process, so progress and
// "reusing cached …" lines show on the terminal once, and every scenario worker gets the same paths.
import { buildGuestImages } from '../images/guest/index.ts'
import { ENV } from './env.ts'
import { PACKAGE_ROOT } from './paths.ts'
import { missingRequirement } from './requirements.ts'

/** Only the package's own scenarios boot the real guest; throwaway projects (harness tests) do not. */
export function guestPreparationFor(root: string): (() => Promise<void>) | undefined {
  return root === PACKAGE_ROOT ? prepareGuestImages : undefined
}

export async function prepareGuestImages(): Promise<void> {
  if (process.env[ENV.guestImages]) return
  // Without QEMU the scenarios skip with that reason; nothing to build for them.
  if (missingRequirement(['qemu'])) return
  const images = await buildGuestImages()
  process.env[ENV.guestImages] = JSON.stringify(images)
}
