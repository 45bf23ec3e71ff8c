import { mkdir, mkdtemp, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { checkComponent, PinnedPath, scopedJoin, scopedMkdirAll, scopedResolve } from './index.ts'

let root: string
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'kataref-sp-')))
})
afterEach(async () => rm(root, { recursive: true, force: true }))

describe('scoped_join / scoped_resolve (spec §6)', () => {
  test('#39 .. never climbs above the root', async () => {
    expect(await scopedJoin(root, '../../a')).toBe(`${root}/a`)
    expect(await scopedJoin(root, 'c/d/../../../.././a')).toBe(`${root}/a`)
    expect(await scopedResolve(root, '/')).toBe('')
    expect(await scopedJoin(root, '..')).toBe(root)
  })
  test('#39 a relative symlink a -> b/c resolves inside the root; absolute targets restart at the root', async () => {
    await mkdir(join(root, 'b/c'), { recursive: true })
    await symlink('b/c', join(root, 'a'))
    expect(await scopedJoin(root, 'a/../../../b/c')).toBe(`${root}/b/c`)
    expect(await scopedJoin(root, 'a')).toBe(`${root}/b/c`)
    await symlink('/etc/passwd', join(root, 'abs'))
    expect(await scopedJoin(root, 'abs')).toBe(`${root}/etc/passwd`)
    await symlink('../../../../etc', join(root, 'up'))
    expect(await scopedJoin(root, 'up/shadow')).toBe(`${root}/etc/shadow`)
  })
  test('#39 a symlink loop errors with "Too many levels of symlinks"', async () => {
    await symlink('y', join(root, 'x'))
    await symlink('x', join(root, 'y'))
    await expect(scopedJoin(root, 'x/z')).rejects.toThrow(/Too many levels of symlinks/)
  })
  test('a missing root is an error; missing tails are returned normalised', async () => {
    await expect(scopedJoin(join(root, 'nope'), 'a')).rejects.toThrow(/cannot be canonicalised/)
    expect(await scopedResolve(root, './x//y/./z')).toBe('x/y/z')
  })
})

describe('PinnedPath (spec §6)', () => {
  test('#40 a component swapped for a symlink after resolution → "possible attack"', async () => {
    await mkdir(join(root, 'd'))
    await writeFile(join(root, 'd/f'), 'x')
    const expected = await scopedJoin(root, 'd/f')
    const ok = await PinnedPath.new(root, 'd/f')
    expect(ok.target).toBe(expected)
    await ok.close()
    await rename(join(root, 'd'), join(root, 'd2'))
    await symlink('d2', join(root, 'd'))
    await expect(PinnedPath.fromPath(expected)).rejects.toThrow(/possible attack/)
  })
  test('#40 components: a/b and .. rejected, a..b accepted; a child symlink is rejected', async () => {
    expect(() => checkComponent('a/b')).toThrow()
    expect(() => checkComponent('..')).toThrow()
    for (const bad of ['', '.', '/', '//']) expect(() => checkComponent(bad)).toThrow()
    expect(() => checkComponent('a..b')).not.toThrow()
    const p = await PinnedPath.new(root, '')
    const child = await p.mkdir('sub', 0o755)
    expect(child.target).toBe(`${root}/sub`)
    await symlink('/tmp', join(root, 'ln'))
    await expect(p.openChild('ln')).rejects.toThrow(/possible attack/)
    await expect(p.mkdir('sub')).rejects.toThrow()
    await child.close()
    await p.close()
  })
  test('scopedMkdirAll creates missing components inside the root and refuses non-directories', async () => {
    await symlink('/nonexistent-outside', join(root, 'esc'))
    const r = await scopedMkdirAll(root, 'esc/x/y', 0o755)
    expect(r.path).toBe(`${root}/nonexistent-outside/x/y`)
    await writeFile(join(root, 'file'), '')
    await expect(scopedMkdirAll(root, 'file/x')).rejects.toThrow(/not a directory/)
  })
})
