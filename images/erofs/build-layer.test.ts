import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile, readFile, mkdir, readdir, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildErofsLayer, EROFS_DEFAULT_UUID } from './build-layer.ts'
import { InvalidInputError, ToolError } from '../../impl/types/errors.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-erofs-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

async function tree(root: string, reverse = false) {
  await mkdir(join(root, 'etc', 'deep'), { recursive: true })
  const steps = [
    () => writeFile(join(root, 'etc', 'hostname'), 'kataref\n'),
    () => writeFile(join(root, 'etc', 'deep', 'blob'), Buffer.alloc(20000, 7)),
    () => symlink('hostname', join(root, 'etc', 'link')),
    () => writeFile(join(root, 'etc', 'zz'), 'last\n'),
  ]
  for (const step of reverse ? steps.reverse() : steps) await step()
}

describe('buildErofsLayer', () => {
  it('is deterministic: two builds of equal trees are byte-identical, and carry the fixed UUID', async () => {
    await tree(join(dir, 'a')); await tree(join(dir, 'b'), true) // created in the opposite order
    const l1 = await buildErofsLayer(join(dir, 'a'), join(dir, 'out', 'a.erofs'), { allRoot: true })
    const l2 = await buildErofsLayer(join(dir, 'b'), join(dir, 'out', 'b.erofs'), { allRoot: true })
    const [x, y] = [await readFile(l1.path), await readFile(l2.path)]
    expect(x.equals(y)).toBe(true)
    expect(l1.sizeBytes).toBe(x.length)
    expect(x.readUInt32LE(1024)).toBe(0xe0f5e1e2) // EROFS superblock magic
    expect(x.subarray(1024 + 48, 1024 + 64).toString('hex')).toBe(EROFS_DEFAULT_UUID.replaceAll('-', ''))
    expect((await readdir(join(dir, 'out'))).sort()).toEqual(['a.erofs', 'b.erofs'])
  })
  it('missing tool → ToolError, nothing left behind', async () => {
    await expect(buildErofsLayer(join(dir, 'a'), join(dir, 'out2', 'x.erofs'), { mkfsErofs: '/nonexistent/mkfs.erofs' })).rejects.toThrow(ToolError)
    expect(await readdir(join(dir, 'out2'))).toEqual([])
  })
  it('failing tool → ToolError with its stderr, nothing left behind', async () => {
    const err = await buildErofsLayer(join(dir, 'a'), join(dir, 'out3', 'x.erofs'), { mkfsErofs: 'false' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToolError)
    expect(String((err as Error).message)).toMatch(/exit code 1/)
    expect(await readdir(join(dir, 'out3'))).toEqual([])
  })
  it('bad inputs → InvalidInputError naming the input', async () => {
    await expect(buildErofsLayer(join(dir, 'nope'), join(dir, 'o.erofs'))).rejects.toThrow(/EROFS source directory/)
    await writeFile(join(dir, 'file'), 'x')
    await expect(buildErofsLayer(join(dir, 'file'), join(dir, 'o.erofs'))).rejects.toThrow(InvalidInputError)
    await expect(buildErofsLayer(join(dir, 'a'), join(dir, 'o.erofs'), { uuid: 'zz' })).rejects.toThrow(/EROFS UUID/)
    await expect(buildErofsLayer(join(dir, 'a'), join(dir, 'o.erofs'), { timestamp: -1 })).rejects.toThrow(/EROFS timestamp/)
  })
})
