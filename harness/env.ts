// Environment variables the runner (cli) sets for the scenario workers (fixtures). One place, so the
// two sides cannot drift.
export const ENV = {
  /** `1`: the guest fixture leaves the VM running (`kataref run --keep`). */
  keepGuest: 'KATAREF_KEEP_GUEST',
  /** File the fixture appends kept-guest descriptions to (JSON lines); the CLI prints them at the end. */
  keepFile: 'KATAREF_KEEP_FILE',
  /** Per-run temporary directory for guest run dirs; the CLI removes it when the run ends. */
  runRoot: 'KATAREF_RUN_ROOT',
  /** Comma-separated requirement names to treat as missing (testing and dry runs). */
  assumeMissing: 'KATAREF_ASSUME_MISSING',
  /** JSON of the GuestImages the runner built once for the whole run (see boot-guest.ts). */
  guestImages: 'KATAREF_GUEST_IMAGES',
  /** Project root whose `scenarios/` folder is run instead of the package's own. */
  root: 'KATAREF_ROOT',
} as const
