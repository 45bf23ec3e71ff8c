import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { atomicEntry, defaultCacheDir, pruneEntries, REPO_ROOT, scratchDir } from './cache.ts'

describe('guest image cache', () => {
  const dirs: string[] = []
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'kataref-cache-'))
    dirs.push(d)
    return d
  }
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('defaults to <repo>/.cache/guest, KATAREF_CACHE_DIR overrides', () => {
    const saved = process.env.KATAREF_CACHE_DIR
    try {
      delete process.env.KATAREF_CACHE_DIR
      expect(defaultCacheDir()).toBe(join(REPO_ROOT, '.cache', 'guest'))
      process.env.KATAREF_CACHE_DIR = '/x/y'
      expect(defaultCacheDir()).toBe('/x/y')
    } finally {
      if (saved === undefined) delete process.env.KATAREF_CACHE_DIR
      else process.env.KATAREF_CACHE_DIR = saved
    }
  })

  it('renames a finished entry into place and reuses it afterwards', async () => {
    const d = tmp()
    const p = join(d, 'sub', 'entry.bin')
    expect(await atomicEntry(p, async (t) => writeFileSync(t, 'one'))).toBe(true)
    expect(readFileSync(p, 'utf8')).toBe('one')
    expect(await atomicEntry(p, async (t) => writeFileSync(t, 'two'))).toBe(false)
    expect(readFileSync(p, 'utf8')).toBe('one')
    expect(readdirSync(join(d, 'sub'))).toEqual(['entry.bin'])
  })

  it('leaves nothing behind when the build fails', async () => {
    const d = tmp()
    const p = join(d, 'entry')
    await expect(
      atomicEntry(p, async (t) => {
        writeFileSync(t, 'half')
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(existsSync(p)).toBe(false)
    expect(readdirSync(d)).toEqual([])
  })

  it('scratch dirs are removed by done()', async () => {
    const d = tmp()
    const s = await scratchDir(d, 'x')
    writeFileSync(join(s.path, 'f'), 'x')
    await s.done()
    expect(existsSync(s.path)).toBe(false)
  })

  it('prunes all but the most recently used entries, never the protected one', () => {
    const d = tmp()
    for (const [i, n] of ['rootfs-a', 'rootfs-b', 'rootfs-c', 'rootfs-d', 'other'].entries()) {
      writeFileSync(join(d, n), n)
      utimesSync(join(d, n), 1000 + i, 1000 + i)
    }
    writeFileSync(join(d, 'rootfs-0'), 'recent') // unused for less than minAgeMs: kept
    utimesSync(join(d, 'rootfs-0'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
    utimesSync(join(d, 'rootfs-d'), 999, 999)
    const removed = pruneEntries(d, 'rootfs-', 2, [join(d, 'rootfs-a')])
    // most recent first: 0 (kept, fresh), c (kept), b (removed), a (protected), d (removed)
    expect(removed.sort()).toEqual([join(d, 'rootfs-b'), join(d, 'rootfs-d')])
    expect(readdirSync(d).sort()).toEqual(['other', 'rootfs-0', 'rootfs-a', 'rootfs-c'])
  })
})
