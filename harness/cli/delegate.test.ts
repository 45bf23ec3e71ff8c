import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { importOptional } from './delegate.ts'

describe('importOptional', () => {
  let root: string
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kataref-delegate-'))
    await mkdir(join(root, 'x'))
    await writeFile(join(root, 'x', 'ok.mjs'), 'export const main = () => 7\n')
    await writeFile(join(root, 'x', 'broken.mjs'), "import './missing-dep.mjs'\n")
  })
  afterAll(() => rm(root, { recursive: true, force: true }))

  it('loads a module, and tells a missing module from a broken one', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      expect(((await importOptional<{ main(): number }>('t', 'x/ok.mjs', root)) ?? { main: () => 0 }).main()).toBe(7)
      expect(await importOptional('agent', 'x/nope.mjs', root)).toBeNull()
      expect(err).toHaveBeenLastCalledWith('kataref agent: not available: x/nope.mjs does not exist in this build\n')
      expect(await importOptional('image', 'x/broken.mjs', root)).toBeNull()
      expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/^kataref image: cannot load x\/broken.mjs: .*missing-dep.mjs/)
    } finally {
      err.mockRestore()
    }
  })
})
