// Boots a real guest for scenarios. The lead replaces this body (images + QemuVm + debug console).
import { KatarefError, Code } from '../impl/types/errors.ts'
import type { BootGuest, BootedGuest } from './guest.ts'

export const bootGuest: BootGuest<BootedGuest> = async () => {
  throw new KatarefError('bootGuest: not wired yet (harness/boot-guest.ts)', Code.UNIMPLEMENTED)
}
