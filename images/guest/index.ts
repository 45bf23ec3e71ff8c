export { buildGuestImages, type BuildGuestImagesOptions, type GuestImages } from './build.ts'
export { defaultCacheDir } from './cache.ts'
export { GUEST_MODULES } from './kernel.ts'
export {
  AGENT_GUEST_PATH,
  BARE_MARKER,
  DEFAULT_AGENT_PORT,
  DEFAULT_DEBUG_PORT,
  DEFAULT_ROOT_DEVICE,
  SYSINIT_MARKER,
} from './scripts.ts'
