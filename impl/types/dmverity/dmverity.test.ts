import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile, readFile, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { execa } from 'execa'
import {
  parseDmVeritySidecar, readDmVeritySidecar, dmVeritySidecarPath, dmVerityPartitionOptions, CONTAINERD_DEFAULT_SALT,
  parseDmVerityInfo, serializeDmVerityInfo, defaultDmVerityInfo, type DmVeritySidecar,
} from './index.ts'
import { formatVerity } from '../../../images/verity/index.ts'
import { InvalidInputError } from '../errors.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-dmv-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

let n = 0
/** A containerd-style protected layer: data padded to B, superblock at hashoffset, tree after. */
async function containerdLayer(o: { size?: number; block?: number; salt?: Buffer } = {}) {
  const B = o.block ?? 4096
  const size = o.size ?? 5 * 4096 + 100
  const p = join(dir, `layer-${n++}.erofs`)
  await writeFile(p, randomBytes(size))
  const hashoffset = Math.ceil(size / B) * B
  await truncate(p, hashoffset)
  const r = await formatVerity(p, { dataBlockSize: B, hashBlockSize: B, salt: o.salt ?? Buffer.alloc(32), hashOffset: hashoffset })
  const sidecar: DmVeritySidecar = { roothash: r.rootHash, hashoffset, hashoffsetText: String(hashoffset) }
  return { path: p, sidecar, r }
}

/** The agent's derivation (§10), turned into a `veritysetup verify` call on the layer file. */
async function agentVerify(path: string, options: string[]): Promise<boolean> {
  const m = new Map(options.map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)]))
  const blocksize = Number(m.get('X-kata.dmverity.blocksize') ?? 4096)
  const hashsize = Number(m.get('X-kata.dmverity.hashsize') ?? 4096)
  const algorithm = m.get('X-kata.dmverity.algorithm') ?? 'sha256'
  const hashType = m.get('X-kata.dmverity.hashtype') ?? '1'
  const offset = Number(m.get('X-kata.dmverity.hashoffset'))
  const noSb = m.get('X-kata.dmverity.no-superblock') === 'true'
  const saltOpt = m.get('X-kata.dmverity.salt')
  const salt = saltOpt === undefined || saltOpt === '' || saltOpt === '-' ? '-' : saltOpt
  if (offset % blocksize !== 0) return false // the agent rejects it
  const blocknum = offset / blocksize
  const hashStart = noSb ? offset / hashsize : offset / hashsize + Math.ceil(512 / hashsize)
  const r = await execa('veritysetup', ['verify', path, path, m.get('X-kata.dmverity.roothash')!, '--no-superblock',
    `--data-block-size=${blocksize}`, `--hash-block-size=${hashsize}`, `--data-blocks=${blocknum}`,
    `--hash-offset=${hashStart * hashsize}`, `--hash=${algorithm}`, `--format=${hashType}`, `--salt=${salt}`], { reject: false })
  return r.exitCode === 0
}

describe('sidecar parsing (§7) — §16 rows 22, 23, 24', () => {
  it('accepts containerd output, unknown keys, salt null / string', () => {
    expect(parseDmVeritySidecar('{\n  "roothash": "ab",\n  "hashoffset": 4489216\n}')).toEqual({ roothash: 'ab', hashoffset: 4489216, hashoffsetText: '4489216' })
    expect(parseDmVeritySidecar('{"roothash":"","hashoffset":0,"salt":null,"x":{"y":[1,"}"]}}').salt).toBeUndefined()
    expect(parseDmVeritySidecar('{"roothash":"r","hashoffset":1,"salt":"abcd"}').salt).toBe('abcd')
  })
  it('row 22: missing hashoffset, string, negative, float, trailing comma, duplicate key → typed error', () => {
    for (const bad of ['{"roothash":"r"}', '{"roothash":"r","hashoffset":"1"}', '{"roothash":"r","hashoffset":-1}',
      '{"roothash":"r","hashoffset":1.5}', '{"roothash":"r","hashoffset":1e3}', '{"roothash":"r","hashoffset":1,}',
      '{"roothash":"r","hashoffset":1,"hashoffset":2}', '{"hashoffset":1}', '{"roothash":1,"hashoffset":1}',
      '{"roothash":"r","hashoffset":18446744073709551616}', '[]', 'null', '{"roothash":"r","hashoffset":1,"salt":5}']) {
      expect(() => parseDmVeritySidecar(bad), bad).toThrow(InvalidInputError)
    }
  })
  it('row 22/23: 65 537 bytes rejected, 65 536 accepted', async () => {
    const base = '{"roothash":"r","hashoffset":1}'
    const at = join(dir, 'sc-ok'); await writeFile(at, base + ' '.repeat(65536 - base.length))
    expect((await readDmVeritySidecar(at)).hashoffset).toBe(1)
    const big = join(dir, 'sc-big'); await writeFile(big, base + ' '.repeat(65537 - base.length))
    await expect(readDmVeritySidecar(big)).rejects.toThrow(/too large: 65537 bytes \(max 65536\)/)
    await expect(readDmVeritySidecar(join(dir, 'nope'))).rejects.toThrow(/failed to stat/)
    const bin = join(dir, 'sc-bin'); await writeFile(bin, Buffer.from([0xff, 0xfe]))
    await expect(readDmVeritySidecar(bin)).rejects.toThrow(/UTF-8/)
  })
  it('row 24: option lookup is exact-case, needs "=", splits at the first "=", later wins', () => {
    expect(dmVeritySidecarPath(['ro', 'X-containerd.dmverity'])).toBeUndefined()
    expect(dmVeritySidecarPath(['x-containerd.dmverity=/a'])).toBeUndefined()
    expect(dmVeritySidecarPath(['X-containerd.dmverity=/a=b', 'X-containerd.dmverity=/c'])).toBe('/c')
    expect(dmVeritySidecarPath(['X-containerd.dmverity=/a=b'])).toBe('/a=b')
  })
})

describe('partition options (§9) — §16 rows 17–21', () => {
  it('row 17: containerd-style layer → 5 options, no-superblock=false, zero salt; agent verify succeeds', async () => {
    const { path, sidecar } = await containerdLayer()
    const opts = await dmVerityPartitionOptions({ sidecar, layerPath: path })
    expect(opts).toEqual(['X-kata.dmverity-enabled=true', `X-kata.dmverity.roothash=${sidecar.roothash}`,
      `X-kata.dmverity.hashoffset=${sidecar.hashoffset}`, 'X-kata.dmverity.no-superblock=false', `X-kata.dmverity.salt=${CONTAINERD_DEFAULT_SALT}`])
    expect(await agentVerify(path, opts)).toBe(true)
  })
  it('row 18: 16-byte superblock salt, no salt key → that salt in lowercase hex', async () => {
    const salt = randomBytes(16)
    const { path, sidecar } = await containerdLayer({ salt })
    const opts = await dmVerityPartitionOptions({ sidecar, layerPath: path })
    expect(opts[4]).toBe(`X-kata.dmverity.salt=${salt.toString('hex')}`)
    expect(await agentVerify(path, opts)).toBe(true)
  })
  it('row 19: sidecar salt wins regardless of the superblock', async () => {
    const { path, sidecar } = await containerdLayer({ salt: randomBytes(16) })
    for (const quirks of ['fixed', 'upstream'] as const) {
      expect((await dmVerityPartitionOptions({ sidecar: { ...sidecar, salt: 'abcd' }, layerPath: path, quirks }))[4]).toBe('X-kata.dmverity.salt=abcd')
    }
  })
  it('row 20: no superblock at hashoffset, or offset past EOF → no-superblock=true, zero salt', async () => {
    const { path, sidecar } = await containerdLayer()
    for (const hashoffset of [4096, 1 << 30]) {
      const opts = await dmVerityPartitionOptions({ sidecar: { ...sidecar, hashoffset, hashoffsetText: String(hashoffset) }, layerPath: path })
      expect(opts.slice(3)).toEqual(['X-kata.dmverity.no-superblock=true', `X-kata.dmverity.salt=${CONTAINERD_DEFAULT_SALT}`])
    }
    const missing = await dmVerityPartitionOptions({ sidecar, layerPath: join(dir, 'missing') })
    expect(missing[3]).toBe('X-kata.dmverity.no-superblock=true')
    const noPath = await dmVerityPartitionOptions({ sidecar })
    expect(noPath.slice(3)).toEqual(['X-kata.dmverity.no-superblock=false', `X-kata.dmverity.salt=${CONTAINERD_DEFAULT_SALT}`])
  })
  it('row 21: version 2 / salt_size 300 / salt_size 0 (upstream) / truncated after 50 B → no-superblock=false, zero salt', async () => {
    const { path, sidecar } = await containerdLayer({ salt: randomBytes(16) })
    const original = await readFile(path)
    const patch = async (f: (b: Buffer) => Buffer) => { await writeFile(path, f(Buffer.from(original))) }
    const cases: [string, (b: Buffer) => Buffer, 'fixed' | 'upstream'][] = [
      ['version 2', (b) => { b.writeUInt32LE(2, sidecar.hashoffset + 8); return b }, 'fixed'],
      ['salt_size 300', (b) => { b.writeUInt16LE(300, sidecar.hashoffset + 80); return b }, 'fixed'],
      ['salt_size 0', (b) => { b.writeUInt16LE(0, sidecar.hashoffset + 80); return b }, 'upstream'],
      ['truncated', (b) => b.subarray(0, sidecar.hashoffset + 50), 'fixed'],
    ]
    for (const [name, f, quirks] of cases) {
      await patch(f)
      const opts = await dmVerityPartitionOptions({ sidecar, layerPath: path, quirks })
      expect(opts.slice(3), name).toEqual(['X-kata.dmverity.no-superblock=false', `X-kata.dmverity.salt=${CONTAINERD_DEFAULT_SALT}`])
    }
    await writeFile(path, original)
  })
})

describe('§15 quirk fixes (each named after its quirk)', () => {
  it('quirk 15.1 superblock salt_size 0 → empty salt: upstream emits zero salt (verify fails), kataref emits none (verify succeeds)', async () => {
    const { path, sidecar } = await containerdLayer({ salt: Buffer.alloc(0) })
    const upstream = await dmVerityPartitionOptions({ sidecar, layerPath: path, quirks: 'upstream' })
    expect(upstream[4]).toBe(`X-kata.dmverity.salt=${CONTAINERD_DEFAULT_SALT}`)
    expect(await agentVerify(path, upstream)).toBe(false)
    const fixed = await dmVerityPartitionOptions({ sidecar, layerPath: path })
    expect(fixed[4]).toBe('X-kata.dmverity.salt=')
    expect(await agentVerify(path, fixed)).toBe(true)
  })
  it('quirk 15.2 superblock block sizes not forwarded: 512-byte tar-index layer verifies only with the fix', async () => {
    const { path, sidecar } = await containerdLayer({ size: 9 * 512 + 3, block: 512 })
    const upstream = await dmVerityPartitionOptions({ sidecar, layerPath: path, quirks: 'upstream' })
    expect(upstream).toHaveLength(5)
    expect(await agentVerify(path, upstream)).toBe(false)
    const fixed = await dmVerityPartitionOptions({ sidecar, layerPath: path })
    expect(fixed.slice(5)).toEqual(['X-kata.dmverity.blocksize=512', 'X-kata.dmverity.hashsize=512'])
    expect(await agentVerify(path, fixed)).toBe(true)
  })
  it('quirk 15.2 algorithm / hash type not forwarded: sha512 layer carries its algorithm with the fix', async () => {
    const p = join(dir, 'sha512.erofs'); await writeFile(p, randomBytes(8 * 4096))
    const r = await formatVerity(p, { algorithm: 'sha512', salt: Buffer.alloc(32), hashOffset: 8 * 4096 })
    const sidecar = { roothash: r.rootHash, hashoffset: 8 * 4096, hashoffsetText: String(8 * 4096) }
    const fixed = await dmVerityPartitionOptions({ sidecar, layerPath: p })
    expect(fixed.slice(5)).toEqual(['X-kata.dmverity.algorithm=sha512'])
    expect(await agentVerify(p, fixed)).toBe(true)
    expect(await agentVerify(p, await dmVerityPartitionOptions({ sidecar, layerPath: p, quirks: 'upstream' }))).toBe(false)
  })
  it('quirk 15.3 no-superblock ignores the salt actually used: only a sidecar salt makes it verifiable', async () => {
    const p = join(dir, 'nosb.erofs'); await writeFile(p, randomBytes(8 * 4096))
    const r = await formatVerity(p, { superblock: false, salt: Buffer.from('abcd', 'hex'), hashOffset: 8 * 4096 })
    const sidecar = { roothash: r.rootHash, hashoffset: 8 * 4096, hashoffsetText: String(8 * 4096) }
    expect(await agentVerify(p, await dmVerityPartitionOptions({ sidecar, layerPath: p }))).toBe(false)
    const withSalt = await dmVerityPartitionOptions({ sidecar: { ...sidecar, salt: 'abcd' }, layerPath: p })
    expect(withSalt[3]).toBe('X-kata.dmverity.no-superblock=true')
    expect(await agentVerify(p, withSalt)).toBe(true)
  })
})

describe('DmVerityInfo (§11) — §16 row 26', () => {
  const legacy = '{"hashtype":"sha256","hash":"ab","blocknum":1096,"blocksize":4096,"hashsize":4096,"offset":4489216}'
  it('row 26: six legacy fields load with salt None, hash_type 1, no_superblock false; reserialize without salt', () => {
    const info = parseDmVerityInfo(legacy)
    expect(info.salt).toBeUndefined()
    expect(info.hash_type).toBe(1)
    expect(info.no_superblock).toBe(false)
    expect(serializeDmVerityInfo(info)).toBe('{"hashtype":"sha256","hash":"ab","blocknum":1096,"blocksize":4096,"hashsize":4096,"offset":4489216,"hash_type":1,"no_superblock":false}')
  })
  it('new fields round-trip; salt null = None; unknown keys ignored; bad types are typed errors', () => {
    const full = { ...JSON.parse(legacy), salt: 'abcd', hash_type: 0, no_superblock: true, extra: 1 }
    const info = parseDmVerityInfo(JSON.stringify(full))
    expect(serializeDmVerityInfo(info)).toBe('{"hashtype":"sha256","hash":"ab","blocknum":1096,"blocksize":4096,"hashsize":4096,"offset":4489216,"salt":"abcd","hash_type":0,"no_superblock":true}')
    expect(parseDmVerityInfo(JSON.stringify({ ...JSON.parse(legacy), salt: null })).salt).toBeUndefined()
    expect(() => parseDmVerityInfo('{"hashtype":"sha256"}')).toThrow(/DmVerityInfo.hash/)
    expect(() => parseDmVerityInfo(JSON.stringify({ ...JSON.parse(legacy), blocknum: -1 }))).toThrow(/blocknum/)
    expect(() => parseDmVerityInfo(JSON.stringify({ ...JSON.parse(legacy), no_superblock: 'yes' }))).toThrow(/no_superblock/)
  })
  it('quirk: derived Default has hash_type 0 upstream; kataref default is 1 like the serde default', () => {
    expect(defaultDmVerityInfo().hash_type).toBe(1)
  })
})
