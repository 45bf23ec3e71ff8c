// Byte-identity with veritysetup over random parameters (a few dozen runs: each one spawns it).
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fc from 'fast-check'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { formatVerity, verifyVerity } from './index.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-verity-prop-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

const UUID = '0f0e0d0c-0b0a-4908-8706-050403020100'

describe('property: formatVerity == veritysetup format', () => {
  it('random block sizes, algorithms, hash types, salts, superblock on/off, sizes', async () => {
    let n = 0
    await fc.assert(fc.asyncProperty(
      fc.record({
        dataBlockSize: fc.constantFrom(512, 1024, 2048, 4096),
        hashBlockSize: fc.constantFrom(512, 1024, 2048, 4096),
        algorithm: fc.constantFrom('sha1' as const, 'sha256' as const, 'sha512' as const),
        hashType: fc.constantFrom(0 as const, 1 as const),
        salt: fc.uint8Array({ maxLength: 64 }),
        superblock: fc.boolean(),
        blocks: fc.integer({ min: 1, max: 700 }),
        tail: fc.integer({ min: 0, max: 511 }),
        seed: fc.integer(),
      }),
      async (p) => {
        const id = n++
        const data = join(dir, `d${id}`)
        const bytes = Buffer.alloc(p.blocks * p.dataBlockSize + p.tail)
        for (let i = 0; i < bytes.length; i += 97) bytes[i] = (p.seed + i) & 0xff
        await writeFile(data, bytes)
        const ours = join(dir, `o${id}`)
        const theirs = join(dir, `t${id}`)
        const salt = Buffer.from(p.salt)
        const args = ['format', data, theirs, `--data-block-size=${p.dataBlockSize}`, `--hash-block-size=${p.hashBlockSize}`,
          `--hash=${p.algorithm}`, `--format=${p.hashType}`, `--salt=${salt.length ? salt.toString('hex') : '-'}`,
          ...(p.superblock ? [`--uuid=${UUID}`] : ['--no-superblock'])]
        const ref = await execa('veritysetup', args)
        const r = await formatVerity(data, { hashPath: ours, dataBlockSize: p.dataBlockSize, hashBlockSize: p.hashBlockSize, algorithm: p.algorithm,
          hashType: p.hashType, salt: salt.length ? salt : 'none', superblock: p.superblock, uuid: UUID })
        expect(r.rootHash).toBe(/Root hash:\s+([0-9a-f]+)/.exec(ref.stdout)![1])
        expect((await readFile(ours)).equals(await readFile(theirs))).toBe(true)
        const v = await verifyVerity(data, { hashPath: ours, hashOffset: 0, rootHash: r.rootHash, superblock: p.superblock,
          ...(p.superblock ? {} : { dataBlockSize: p.dataBlockSize, hashBlockSize: p.hashBlockSize, algorithm: p.algorithm, hashType: p.hashType, salt: salt.toString('hex') }) })
        expect(v.ok).toBe(true)
        await Promise.all([rm(data), rm(ours), rm(theirs)])
      },
    ), { numRuns: 40 })
  })
})

describe('property: verifyVerity agrees with veritysetup verify on corrupted trees and data', () => {
  it('random single-byte corruptions of data, superblock-less tree, or padding', async () => {
    const data = join(dir, 'vd')
    const hash = join(dir, 'vh')
    const bytes = Buffer.alloc(300 * 512)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff
    await writeFile(data, bytes)
    const r = await formatVerity(data, { hashPath: hash, dataBlockSize: 512, hashBlockSize: 512, superblock: false, salt: Buffer.from('5a17', 'hex') })
    const goodHash = await readFile(hash)
    await fc.assert(fc.asyncProperty(
      fc.record({ inData: fc.boolean(), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
      async (c) => {
        const d = Buffer.from(bytes)
        const h = Buffer.from(goodHash)
        if (c.inData) d[c.at % d.length]! ^= c.xor
        else h[c.at % h.length]! ^= c.xor
        await writeFile(data, d)
        await writeFile(hash, h)
        const ours = await verifyVerity(data, { hashPath: hash, hashOffset: 0, rootHash: r.rootHash, superblock: false, dataBlockSize: 512, hashBlockSize: 512, salt: '5a17' })
        const theirs = await execa('veritysetup', ['verify', data, hash, r.rootHash, '--no-superblock', '--data-block-size=512', '--hash-block-size=512', '--salt=5a17'], { reject: false })
        expect(ours.ok).toBe(theirs.exitCode === 0)
        if (!ours.ok && c.inData) expect(ours.firstBad).toEqual({ kind: 'data', block: Math.floor((c.at % d.length) / 512), offset: Math.floor((c.at % d.length) / 512) * 512 })
      },
    ), { numRuns: 40 })
  })
})
