// The guest image cache: one folder (default `<repo>/.cache/guest`, override KATAREF_CACHE_DIR),
// entries named by content hash, each written to a temp path and renamed into place so an
// interrupted build never leaves a half entry behind.
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onExitCleanup } from '../../impl/runtime/hypervisor/qemu/cleanup.ts'

/** Repository root (images/guest/ → ../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export function defaultCacheDir(): string {
  const env = process.env.KATAREF_CACHE_DIR
  return env && env.length > 0 ? resolve(env) : join(REPO_ROOT, '.cache', 'guest')
}

/** Progress lines on stderr while building (one `[guest] …` line per step). */
export type Progress = (msg: string) => void
export const stderrProgress: Progress = (msg) => process.stderr.write(`[guest] ${msg}\n`)
export const silentProgress: Progress = () => {}

export function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256')
  for (const p of parts) {
    h.update(typeof p === 'string' ? Buffer.from(p, 'utf8') : p)
    h.update('\0')
  }
  return h.digest('hex')
}

/** Streams a file through sha256. */
export function hashFile(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256')
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', rej)
      .on('end', () => res(h.digest('hex')))
  })
}

/** Memoises file hashes by path + size + mtime for this process (node is ~100 MB). */
const fileHashMemo = new Map<string, string>()
export async function hashFileMemo(path: string): Promise<string> {
  const st = statSync(path)
  const key = `${path}\0${st.size}\0${st.mtimeMs}`
  const hit = fileHashMemo.get(key)
  if (hit) return hit
  const h = await hashFile(path)
  fileHashMemo.set(key, h)
  return h
}

export function humanSize(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`
  return `${bytes} B`
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true })
  return path
}

/**
 * Makes a cache entry at `finalPath` (file or folder) atomically: `produce` writes to `tmpPath`
 * (a sibling of finalPath), which is renamed onto finalPath when it resolves. On failure or a
 * signal the temp path is removed. Returns true when the entry was built, false when it existed.
 */
export async function atomicEntry(finalPath: string, produce: (tmpPath: string) => Promise<void>): Promise<boolean> {
  if (existsSync(finalPath)) return false
  const tmpDir = await tempDir(dirname(finalPath), `.tmp-${basename(finalPath)}-`)
  const tmpPath = join(tmpDir.path, basename(finalPath))
  try {
    await produce(tmpPath)
    if (existsSync(finalPath)) return false // another builder won the race; ours is dropped
    try {
      await rename(tmpPath, finalPath)
    } catch (e) {
      // A folder entry renamed by a concurrent builder in the meantime: theirs is as good as ours.
      const code = (e as NodeJS.ErrnoException).code
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(finalPath)) return false
      throw e
    }
    return true
  } finally {
    await tmpDir.done()
  }
}

/** Makes a scratch folder under the cache (same filesystem as the entries), removed by `done`. */
export function scratchDir(cacheDir: string, label: string): Promise<{ path: string; done: () => Promise<void> }> {
  return tempDir(join(cacheDir, 'tmp'), `${label}-`)
}

/**
 * A fresh folder `<parent>/<prefix>XXXXXX` (parent created if needed), removed by `done`, or on exit
 * or a signal if `done` never ran (onExitCleanup runs its hooks best effort).
 */
async function tempDir(parent: string, prefix: string): Promise<{ path: string; done: () => Promise<void> }> {
  const path = await mkdtemp(join(ensureDir(parent), prefix))
  const unregister = onExitCleanup(() => rmSync(path, { recursive: true, force: true }))
  return {
    path,
    done: async () => {
      unregister()
      await rm(path, { recursive: true, force: true })
    },
  }
}

/** Marks a cache entry as used now (its mtime orders pruning). */
export function touchEntry(path: string): void {
  try {
    const now = new Date()
    utimesSync(path, now, now)
  } catch {
    /* gone or read-only: pruning is best effort */
  }
}

/**
 * Keeps the `keep` most recently used entries of `dir` whose names start with `prefix` and removes
 * the others that were not used for `minAgeMs` (another process may still boot them): rootfs images
 * are ~110 MiB each and change with every agent edit. `protect` is never removed.
 */
export function pruneEntries(dir: string, prefix: string, keep: number, protect: string[] = [], minAgeMs = 3_600_000): string[] {
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(prefix))
  } catch {
    return []
  }
  const withTime = names
    .map((n) => {
      try {
        return { n, t: statSync(join(dir, n)).mtimeMs }
      } catch {
        return undefined
      }
    })
    .filter((x): x is { n: string; t: number } => x !== undefined)
    .sort((a, b) => b.t - a.t)
  const removed: string[] = []
  const now = Date.now()
  for (const { n, t } of withTime.slice(keep)) {
    const p = join(dir, n)
    if (protect.includes(p) || now - t < minAgeMs) continue
    rmSync(p, { recursive: true, force: true })
    removed.push(p)
  }
  return removed
}
