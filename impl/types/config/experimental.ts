// `[runtime] experimental` (array of strings): a feature is on when its exact name is listed.
// runtime-rs knows one feature; unknown names are kept (harmless) but reported with the list of
// known ones so a typo does not silently disable a feature.

export const FORCE_GUEST_PULL = 'force_guest_pull'

export const KNOWN_EXPERIMENTAL_FEATURES: readonly string[] = [FORCE_GUEST_PULL]

/** force_guest_pull: listed in `experimental`, or the Go key `experimental_force_guest_pull = true`. */
export function forceGuestPullEnabled(runtime: { experimental: readonly string[]; experimentalForceGuestPull?: boolean }): boolean {
  return runtime.experimental.includes(FORCE_GUEST_PULL) || runtime.experimentalForceGuestPull === true
}

export function isExperimentalEnabled(experimental: readonly string[], feature: string): boolean {
  return experimental.includes(feature)
}

/** One warning per unknown feature name. */
export function experimentalWarnings(experimental: readonly string[], where = '[runtime] experimental'): string[] {
  return experimental
    .filter((f) => !KNOWN_EXPERIMENTAL_FEATURES.includes(f))
    .map((f) => `${where}: unknown experimental feature ${JSON.stringify(f)} ignored; known features: ${KNOWN_EXPERIMENTAL_FEATURES.join(', ')}`)
}
