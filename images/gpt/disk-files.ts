// Lifetime of the files a GPT disk adds to the container directory (head image, padding files):
// each tracked once; teardown is idempotent and never touches anything outside that directory.
import { rm, lstat } from 'node:fs/promises'
import { isAbsolute, relative, resolve } from 'node:path'
import { KatarefError, Code, errorMessage } from '../../impl/types/errors.ts'

/** Component-wise containment: `/a/bc` is not inside `/a/b`. */
export function isInsideDir(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path))
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)
}

export class GptDiskFiles {
  readonly containerDir: string
  readonly #paths: string[] = []

  constructor(containerDir: string) {
    this.containerDir = containerDir
  }

  /** Tracks a path for cleanup; a path already tracked is not added again. */
  track(path: string): void {
    const p = resolve(path)
    if (!this.#paths.includes(p)) this.#paths.push(p)
  }

  get paths(): readonly string[] {
    return [...this.#paths]
  }

  /**
   * Deletes every tracked file that is inside the container directory and still exists; missing
   * files are fine. Files deleted are forgotten, so a second call does nothing. The first deletion
   * error stops the walk (the rest stay tracked for a retry).
   */
  async cleanup(): Promise<void> {
    while (this.#paths.length > 0) {
      const p = this.#paths[0]!
      if (isInsideDir(this.containerDir, p)) {
        const exists = await lstat(p).then(() => true, () => false)
        if (exists) {
          try {
            await rm(p, { force: true })
          } catch (e) {
            throw new KatarefError(`removing GPT disk file ${p}: ${errorMessage(e)}`, Code.INTERNAL, { path: p }, { cause: e })
          }
        }
      }
      this.#paths.shift()
    }
  }
}
