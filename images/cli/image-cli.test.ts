import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { imageBuild, imageInspect } from './index.ts'
import { InvalidInputError, ToolError } from '../../impl/types/errors.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kataref-imgcli-'))
  for (const [i, name] of ['base', 'mid', 'top'].entries()) {
    await mkdir(join(dir, 'src', name, 'etc'), { recursive: true })
    await writeFile(join(dir, 'src', name, 'etc', `${name}.conf`), `layer ${i}\n`.repeat(100 * (i + 1)))
  }
})
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('imageBuild / imageInspect', () => {
  it('builds a 3-layer verity disk in one call; qemu-img reads it; veritysetup verifies each layer; inspect tables it', async () => {
    const out = join(dir, 'out')
    const lines: string[] = []
    const s = await imageBuild(['base', 'mid', 'top'].map((n) => join(dir, 'src', n)), { out, verity: true, erofs: { allRoot: true }, progress: (l) => lines.push(l) })
    expect(s.layers.map((l) => [l.partition, l.name])).toEqual([[1, 'erofs-0-s1'], [2, 'erofs-1-s2'], [3, 'erofs-2-s3']])
    expect(s.layerBytesCopied).toBe(0)
    expect(lines.length).toBeGreaterThan(3)
    for (const l of s.layers) {
      expect(l.dmverityOptions.slice(3)).toEqual(['X-kata.dmverity.no-superblock=false', `X-kata.dmverity.salt=${'0'.repeat(64)}`])
      const sc = JSON.parse(await readFile(l.verity!.sidecar, 'utf8'))
      expect(Object.keys(sc)).toEqual(['roothash', 'hashoffset'])
      await execa('veritysetup', ['verify', l.path, l.path, l.verity!.roothash, `--hash-offset=${l.verity!.hashoffset}`])
    }
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', s.descriptor])).stdout)
    expect(info['virtual-size']).toBe(s.virtualSizeBytes)
    const table = await imageInspect(s.descriptor)
    expect(table).toMatch(/VMDK twoGbMaxExtentFlat/)
    expect(table).toMatch(/1\s+erofs-0-s1\s+2048\s+/)
    expect(table.match(/erofs\s+root [0-9a-f]{16}…/g)).toHaveLength(3)
    expect(await imageInspect(s.head)).toMatch(/GPT head image/)
    expect(JSON.parse(JSON.stringify(s))).toEqual(s)
  })
  it('§16 row 28 end-to-end: VMDK → raw; partition k == layer k; agent-derived veritysetup verify on each partition', async () => {
    const out = join(dir, 'out28')
    const s = await imageBuild(['base', 'mid', 'top'].map((n) => join(dir, 'src', n)), { out, verity: true })
    const raw = join(dir, 'disk28.raw')
    await execa('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', s.descriptor, raw])
    const bytes = await readFile(raw)
    const listing = await execa('sgdisk', ['-p', raw], { reject: false, all: true })
    for (const l of s.layers) {
      expect(listing.all).toContain(l.name)
      const part = bytes.subarray(l.startLba * 512, (l.endLba + 1) * 512)
      const layer = await readFile(l.path)
      expect(part.subarray(0, layer.length).equals(layer)).toBe(true)
      const pfile = join(dir, `p${l.partition}`)
      await writeFile(pfile, part)
      // The agent's table (§10) from the options we send: 4096/4096, blocknum = offset/4096,
      // hash_start_block = offset/4096 + 1 (superblock present).
      const opt = (k: string) => l.dmverityOptions.find((o) => o.startsWith(`X-kata.dmverity.${k}=`))!.split('=')[1]!
      const offset = Number(opt('hashoffset'))
      await execa('veritysetup', ['verify', pfile, pfile, opt('roothash'), '--no-superblock', '--data-block-size=4096', '--hash-block-size=4096',
        `--data-blocks=${offset / 4096}`, `--hash-offset=${(offset / 4096 + 1) * 4096}`, `--salt=${opt('salt')}`])
    }
  })
  it('512-byte verity blocks (containerd tar-index mode): options carry the block sizes; veritysetup verifies', async () => {
    const s = await imageBuild([join(dir, 'src', 'base'), join(dir, 'src', 'top')], { out: join(dir, 'out512'), verity: true, verityBlockSize: 512 })
    for (const l of s.layers) {
      expect(l.dmverityOptions.slice(5)).toEqual(['X-kata.dmverity.blocksize=512', 'X-kata.dmverity.hashsize=512'])
      await execa('veritysetup', ['verify', l.path, l.path, l.verity!.roothash, `--hash-offset=${l.verity!.hashoffset}`])
    }
  })
  it('typed errors and nothing left behind', async () => {
    await expect(imageBuild([], { out: join(dir, 'o1') })).rejects.toThrow(InvalidInputError)
    await expect(imageBuild([join(dir, 'missing')], { out: join(dir, 'o2') })).rejects.toThrow(/EROFS source directory/)
    expect((await readdir(dir)).includes('o2')).toBe(false)
    await expect(imageBuild([join(dir, 'src', 'base')], { out: join(dir, 'o3'), erofs: { mkfsErofs: '/nonexistent' } })).rejects.toThrow(ToolError)
    expect((await readdir(dir)).includes('o3')).toBe(false)
    await expect(imageInspect(join(dir, 'src', 'base', 'etc', 'base.conf'))).rejects.toThrow(InvalidInputError)
    await expect(imageInspect(join(dir, 'nope'))).rejects.toThrow(/cannot be read/)
  })
})
