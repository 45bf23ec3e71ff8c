import { existsSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { copyFile, copyKind, CopyFileError, relativeToShared, tempName, S_IFDIR, S_IFLNK, S_IFREG, type CopyFileRequestLike } from './copy-file.ts'

const P = '/run/kata-containers/shared/containers'
let base: string
let dir: string
const req = (path: string, over: Partial<CopyFileRequestLike> = {}): CopyFileRequestLike => ({
  path: `${P}/${path}`, fileSize: 0n, fileMode: S_IFREG | 0o644, dirMode: 0o755, uid: 0, gid: 0, offset: 0n, data: new Uint8Array(), ...over,
})
const file = (path: string, data: string, mode = 0o644, over: Partial<CopyFileRequestLike> = {}) =>
  copyFile(req(path, { data: Buffer.from(data), fileSize: BigInt(Buffer.byteLength(data)), fileMode: S_IFREG | mode, ...over }), { prefix: P, dir })
const mode = async (p: string) => (await lstat(join(dir, p))).mode

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'kataref-cf-'))
  dir = join(base, 'shared/containers')
  process.umask(0o022)
})
afterEach(async () => rm(base, { recursive: true, force: true }))

describe('CopyFile (spec §4)', () => {
  test('#29 paths outside the shared dir or escaping with .. are rejected and nothing is created', async () => {
    await expect(copyFile(req('x', { path: '/run/kata-containers/shared/containersX/f' }), { prefix: P, dir })).rejects.toBeInstanceOf(CopyFileError)
    await expect(copyFile(req('x', { path: '/etc/f' }), { prefix: P, dir })).rejects.toThrow(/not under/)
    await expect(file('a/../../not-shared', 'x')).rejects.toThrow(/outside the shared directory/)
    await expect(copyFile(req('', { path: P + '/' }), { prefix: P, dir })).rejects.toThrow(/shared directory itself/)
    expect(existsSync(join(base, 'shared/not-shared'))).toBe(false)
    expect(existsSync(dir)).toBe(false) // rejected before touching the filesystem
    expect(relativeToShared(`${P}/a/./b/../c`, P)).toEqual(['a', 'c'])
  })

  test('#30 a file replaced with mode 0o600 has exactly that mode and the new content (umask irrelevant)', async () => {
    process.umask(0o077)
    await file('f', 'old', 0o644)
    expect((await mode('f')) & 0o7777).toBe(0o644)
    await file('f', 'Hello!', 0o600)
    expect((await mode('f')) & 0o7777).toBe(0o600)
    expect(await readFile(join(dir, 'f'), 'utf8')).toBe('Hello!')
  })

  test('#31 dir_mode applies to created parents only; an existing parent keeps its mode', async () => {
    await file('a/b', 'x', 0o644, { dirMode: 0o755 })
    await file('a/c', 'y', 0o644, { dirMode: 0o700 })
    expect((await mode('a')) & 0o7777).toBe(0o755)
  })

  test('#32 directory over a file, file over a directory, dir mode change keeps children', async () => {
    await file('a/b', 'x')
    await copyFile(req('a/b', { fileMode: S_IFDIR | 0o755 }), { prefix: P, dir })
    expect((await stat(join(dir, 'a/b'))).isDirectory()).toBe(true)
    expect((await mode('a/b')) & 0o7777).toBe(0o755)
    await file('a/b', 'now a file', 0o644)
    expect((await stat(join(dir, 'a/b'))).isFile()).toBe(true)
    await copyFile(req('a', { fileMode: S_IFDIR | 0o751 }), { prefix: P, dir })
    expect((await mode('a')) & 0o7777).toBe(0o751)
    expect(await readdir(join(dir, 'a'))).toEqual(['b'])
  })

  test('#33 special bits survive on the target dir; dir_mode is masked to 0o777 for parents', async () => {
    await copyFile(req('x/y', { fileMode: S_IFDIR | 0o3770, dirMode: 0o3755 }), { prefix: P, dir })
    expect((await mode('x')) & 0o7777).toBe(0o755)
    expect((await mode('x/y')) & 0o7777).toBe(0o3770)
  })

  test('#34 symlinks: created verbatim, never followed, replaced by a link or a file', async () => {
    await copyFile(req('a/link', { fileMode: S_IFLNK, data: Buffer.from('/etc/passwd') }), { prefix: P, dir })
    const st = await lstat(join(dir, 'a/link'))
    expect(st.mode).toBe(0o120777)
    expect(await readlink(join(dir, 'a/link'))).toBe('/etc/passwd')
    await expect(copyFile(req('a/link/xxx', { fileMode: S_IFLNK, data: Buffer.from('t') }), { prefix: P, dir })).rejects.toBeInstanceOf(CopyFileError)
    expect(existsSync('/etc/passwd/xxx')).toBe(false)
    await copyFile(req('a/link', { fileMode: S_IFLNK, data: Buffer.from('/etc') }), { prefix: P, dir })
    expect(await readlink(join(dir, 'a/link'))).toBe('/etc')
    await file('a/link', 'data', 0o600)
    const f = await lstat(join(dir, 'a/link'))
    expect(f.isFile()).toBe(true)
    expect(f.mode & 0o7777).toBe(0o600)
  })

  test('a symlinked parent is followed only inside the shared dir', async () => {
    await mkdir(join(dir, 'real'), { recursive: true })
    await copyFile(req('in', { fileMode: S_IFLNK, data: Buffer.from('/real') }), { prefix: P, dir })
    await file('in/f', 'ok')
    expect(await readFile(join(dir, 'real/f'), 'utf8')).toBe('ok')
    await copyFile(req('out', { fileMode: S_IFLNK, data: Buffer.from('../../../../../../tmp') }), { prefix: P, dir })
    await expect(file('out/f', 'no')).rejects.toThrow(/symlink/)
  })

  test('#35 chunked upload: target absent until the last chunk; temp chunked.tmp in between', async () => {
    const r1 = await file('chunked', 'Hello ', 0o644, { fileSize: 11n, offset: 0n })
    expect(r1.complete).toBe(false)
    expect(existsSync(join(dir, 'chunked'))).toBe(false)
    expect(existsSync(join(dir, 'chunked.tmp'))).toBe(true)
    const r2 = await file('chunked', 'World', 0o644, { fileSize: 11n, offset: 6n })
    expect(r2.complete).toBe(true)
    expect(await readFile(join(dir, 'chunked'), 'utf8')).toBe('Hello World')
    expect(existsSync(join(dir, 'chunked.tmp'))).toBe(false)
  })

  test('type dispatch and temp names', () => {
    expect(copyKind(S_IFDIR | 0o755)).toBe('directory')
    expect(copyKind(0o140000)).toBe('directory') // S_IFSOCK contains the S_IFDIR bit (upstream quirk)
    expect(copyKind(0o060000)).toBe('directory') // S_IFBLK too
    expect(copyKind(S_IFLNK)).toBe('symlink')
    expect(copyKind(0o644)).toBe('file')
    expect(copyKind(0o020000)).toBe('file')
    expect([tempName('f'), tempName('config.json'), tempName('a.tar.gz'), tempName('.bashrc')]).toEqual(['f.tmp', 'config.tmp', 'a.tar.tmp', '.bashrc.tmp'])
  })

  test('an empty regular file is one request with no data', async () => {
    const r = await file('empty', '', 0o640)
    expect(r.complete).toBe(true)
    expect((await stat(join(dir, 'empty'))).size).toBe(0)
    await writeFile(join(dir, 'other'), '')
  })
})
