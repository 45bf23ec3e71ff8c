import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, writeFile, readFile, copyFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { execa } from 'execa'
import { formatVerity, verifyVerity, type VerityFormatOptions } from './index.ts'
import { InvalidInputError } from '../../impl/types/errors.ts'

const UUID = '12345678-9abc-4def-8123-456789abcdef'
let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-verity-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

function veritysetupArgs(o: VerityFormatOptions): string[] {
  const a = [`--data-block-size=${o.dataBlockSize ?? 4096}`, `--hash-block-size=${o.hashBlockSize ?? 4096}`,
    `--hash=${o.algorithm ?? 'sha256'}`, `--format=${o.hashType ?? 1}`]
  if (o.salt === 'none') a.push('--salt=-')
  else if (o.salt instanceof Uint8Array) a.push(`--salt=${Buffer.from(o.salt).toString('hex')}`)
  if (o.superblock === false) a.push('--no-superblock')
  else a.push(`--uuid=${UUID}`)
  if (o.hashOffset !== undefined) a.push(`--hash-offset=${o.hashOffset}`)
  if (o.dataBlocks !== undefined) a.push(`--data-blocks=${o.dataBlocks}`)
  return a
}

function parseRoot(stdout: string): string {
  const m = /Root hash:\s+([0-9a-f]+)/.exec(stdout)
  if (!m) throw new Error(`no root hash in ${stdout}`)
  return m[1]!
}

let n = 0
async function compare(size: number, o: VerityFormatOptions & { separate?: boolean }) {
  const id = n++
  const data = join(dir, `data-${id}`)
  await writeFile(data, randomBytes(size))
  const ours = join(dir, `ours-${id}`)
  const theirs = join(dir, `theirs-${id}`)
  const opts: VerityFormatOptions = { ...o, uuid: UUID, workers: 2 }
  let ref
  if (o.separate === false) {
    // Hash area appended to (a copy of) the data file.
    await copyFile(data, ours)
    await copyFile(data, theirs)
    const hashOffset = o.hashOffset ?? Math.floor(size / (o.dataBlockSize ?? 4096)) * (o.dataBlockSize ?? 4096)
    ref = await execa('veritysetup', ['format', theirs, theirs, ...veritysetupArgs({ ...o, hashOffset })])
    const r = await formatVerity(ours, { ...opts, hashOffset })
    expect(r.rootHash).toBe(parseRoot(ref.stdout))
    expect(await readFile(ours)).toEqual(await readFile(theirs))
    return { r, data: ours, hash: ours }
  }
  ref = await execa('veritysetup', ['format', data, theirs, ...veritysetupArgs(o)])
  const r = await formatVerity(data, { ...opts, hashPath: ours })
  expect(r.rootHash).toBe(parseRoot(ref.stdout))
  const [a, b] = [await readFile(ours), await readFile(theirs)]
  expect(a.length).toBe(b.length)
  expect(a.equals(b)).toBe(true)
  // veritysetup's own verifier accepts our tree.
  const vArgs = ['verify', data, ours, r.rootHash, ...veritysetupArgs(o).filter((x) => !x.startsWith('--uuid'))]
  if (o.superblock !== false) {
    await execa('veritysetup', ['verify', data, ours, r.rootHash, ...(o.hashOffset ? [`--hash-offset=${o.hashOffset}`] : [])])
  } else {
    await execa('veritysetup', vArgs)
  }
  return { r, data, hash: ours }
}

describe('formatVerity is byte-identical to veritysetup format', () => {
  it('one data block (no tree levels)', async () => {
    const { r } = await compare(4096, { salt: 'none' })
    expect(r.levels).toBe(0)
  })
  it('data not a multiple of the block size (partial tail not covered)', async () => {
    const { r } = await compare(10_000, { salt: randomBytes(32) })
    expect(r.dataBlocks).toBe(2)
  })
  it('several levels with 512-byte blocks', async () => {
    const { r } = await compare(300 * 512 + 17, { dataBlockSize: 512, hashBlockSize: 512, salt: randomBytes(7) })
    expect(r.levels).toBe(3)
  })
  it('sha512, mixed block sizes', async () => {
    await compare(200 * 1024, { dataBlockSize: 1024, hashBlockSize: 512, algorithm: 'sha512', salt: randomBytes(16) })
  })
  it('sha1 hash type 1 (padded digest slots)', async () => {
    const { r } = await compare(300 * 4096, { algorithm: 'sha1', hashType: 1, salt: randomBytes(20) })
    expect(r.levels).toBe(2)
  })
  it('sha1 hash type 0 (packed digests, salt after data) without superblock', async () => {
    await compare(300 * 4096, { algorithm: 'sha1', hashType: 0, salt: randomBytes(20), superblock: false })
  })
  it('hash type 0 with superblock', async () => {
    await compare(70 * 2048, { dataBlockSize: 2048, hashBlockSize: 2048, hashType: 0, salt: randomBytes(32) })
  })
  it('no superblock, no salt', async () => {
    await compare(130 * 4096, { superblock: false, salt: 'none' })
  })
  it('separate hash file at an offset', async () => {
    const { r } = await compare(50 * 4096, { salt: randomBytes(32), hashOffset: 8192 })
    expect(r.treeOffset).toBe(12288)
  })
  it('hash area appended to the data file (containerd layout), 4096 and 512', async () => {
    const { r } = await compare(5 * 4096 + 100, { salt: Buffer.alloc(32), separate: false, hashOffset: 6 * 4096 })
    expect(r.hashStartBlock).toBe(7)
    await compare(40 * 512, { dataBlockSize: 512, hashBlockSize: 512, salt: Buffer.alloc(32), separate: false })
  })
  it('multi-worker path on a larger file (24 MiB)', async () => {
    await compare(24 << 20, { salt: randomBytes(32) })
  })
  it('random salt is 32 bytes and reported', async () => {
    const data = join(dir, 'rs'); await writeFile(data, randomBytes(8192))
    const r = await formatVerity(data, { hashPath: join(dir, 'rs.hash') })
    expect(r.salt).toMatch(/^[0-9a-f]{64}$/)
    expect(r.superblock?.length).toBe(512)
    expect((await verifyVerity(data, { hashPath: join(dir, 'rs.hash'), hashOffset: 0, rootHash: r.rootHash })).ok).toBe(true)
  })
})

describe('formatVerity rejects bad input with typed errors', () => {
  it('block sizes, algorithm, offsets, empty data', async () => {
    const data = join(dir, 'bad'); await writeFile(data, randomBytes(4096))
    await expect(formatVerity(data, { dataBlockSize: 1000 })).rejects.toThrow(InvalidInputError)
    await expect(formatVerity(data, { hashBlockSize: 8192 })).rejects.toThrow(/hash block size/)
    await expect(formatVerity(data, { algorithm: 'md5' as never })).rejects.toThrow(/unsupported hash algorithm/)
    await expect(formatVerity(data, { hashOffset: 100 })).rejects.toThrow(/multiple of 512/)
    await expect(formatVerity(data, { hashOffset: 0 })).rejects.toThrow(/overlaps/)
    await expect(formatVerity(data, { salt: Buffer.alloc(257) })).rejects.toThrow(/exceeds 256/)
    await expect(formatVerity(join(dir, 'missing'))).rejects.toThrow(InvalidInputError)
    const tiny = join(dir, 'tiny'); await writeFile(tiny, 'x')
    await expect(formatVerity(tiny)).rejects.toThrow(/no whole 4096-byte block/)
    expect((await stat(data)).size).toBe(4096)
    const ragged = join(dir, 'ragged'); await writeFile(ragged, randomBytes(5000))
    await expect(formatVerity(ragged)).rejects.toThrow(/after its last whole block/)
    expect((await stat(ragged)).size).toBe(5000)
  })
})

describe('verifyVerity', () => {
  it('accepts a good tree and reports the first bad data block', async () => {
    const data = join(dir, 'v'); await writeFile(data, randomBytes(600 * 512))
    const hash = join(dir, 'v.hash')
    const r = await formatVerity(data, { hashPath: hash, dataBlockSize: 512, hashBlockSize: 512 })
    expect(await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: r.rootHash })).toEqual({ ok: true, dataBlocks: 600 })
    const bytes = await readFile(data)
    bytes[517 * 512 + 3]! ^= 1
    bytes[599 * 512]! ^= 1
    await writeFile(data, bytes)
    expect(await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: r.rootHash })).toEqual({ ok: false, firstBad: { kind: 'data', block: 517, offset: 517 * 512 } })
  })
  it('reports a corrupted hash block and a wrong root', async () => {
    const data = join(dir, 'w'); await writeFile(data, randomBytes(300 * 4096))
    const hash = join(dir, 'w.hash')
    const r = await formatVerity(data, { hashPath: hash, salt: 'none' })
    const wrongRoot = r.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0'))
    const bad = await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: wrongRoot })
    expect(bad).toMatchObject({ ok: false, firstBad: { kind: 'hash', level: 1, block: 0 } })
    const h = await readFile(hash)
    h[r.treeOffset + 4096 + 4096 + 10]! ^= 0xff // level 0, second block
    await writeFile(hash, h)
    const res = await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: r.rootHash })
    expect(res).toMatchObject({ ok: false, firstBad: { kind: 'hash', level: 0, block: 1, reason: 'digest mismatch' } })
  })
  it('verifies without a superblock given explicit parameters, and checks agreement with one', async () => {
    const data = join(dir, 'x'); await writeFile(data, randomBytes(20 * 4096))
    const hash = join(dir, 'x.hash')
    const r = await formatVerity(data, { hashPath: hash, superblock: false, salt: Buffer.from('abcd', 'hex') })
    expect((await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: r.rootHash, superblock: false, salt: 'abcd' })).ok).toBe(true)
    expect((await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: r.rootHash, superblock: false })).ok).toBe(false)
    const hash2 = join(dir, 'x2.hash')
    const r2 = await formatVerity(data, { hashPath: hash2 })
    await expect(verifyVerity(data, { hashPath: hash2, hashOffset: 0, rootHash: r2.rootHash, dataBlockSize: 512 })).rejects.toThrow(/disagrees/)
  })
})
