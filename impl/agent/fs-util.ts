// Small filesystem helpers shared by the agent's modules.
import { stat } from 'node:fs/promises'

/** True when `p` can be stat'ed (any file type; a dangling symlink counts as absent). */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

/** The errno name (`ENOENT`, `EBUSY`, …) of a failed fs call, if it has one. */
export function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code
}
