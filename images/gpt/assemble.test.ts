import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm, writeFile, readFile, mkdir, readdir, stat, open, symlink, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { execa } from 'execa'
import {
  assembleGptDisk, gptLayout, paddingGaps, parseGptHead, renderHeadImage, partitionName, LINUX_FS_TYPE_GUID,
  GptDiskFiles, HEAD_BYTES,
} from './index.ts'
import { parseVmdkDescriptor } from '../vmdk/index.ts'
import { InvalidInputError } from '../../impl/types/errors.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-gpt-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

const GUIDS = {
  disk: '11111111-2222-4333-8444-555555555555',
  partitions: ['AAAAAAAA-0000-4000-8000-000000000001', 'AAAAAAAA-0000-4000-8000-000000000002', 'AAAAAAAA-0000-4000-8000-000000000003'],
}

async function layer(id: string, size: number): Promise<string> {
  const p = join(dir, 'snapshots', id, 'layer.erofs')
  await mkdir(join(dir, 'snapshots', id), { recursive: true })
  await writeFile(p, randomBytes(size))
  return p
}

async function concatRaw(disk: { extents: { path: string; sectors: number; fileOffset: number }[] }, out: string) {
  const fh = await open(out, 'w')
  let pos = 0
  for (const e of disk.extents) {
    const src = await readFile(e.path)
    const want = e.sectors * 512
    const chunk = Buffer.alloc(want)
    src.copy(chunk, 0, e.fileOffset * 512, Math.min(src.length, e.fileOffset * 512 + want))
    await fh.write(chunk, 0, want, pos)
    pos += want
  }
  await fh.close()
}

const SIZES = [4096, 1_048_577, 3 << 20]

describe('GPT layout (§3, §5) — §16 rows 3, 4, 10, 12', () => {
  const layers = SIZES.map((s, i) => ({ path: `/r/snapshots/${35 + i}/layer.erofs`, sizeBytes: s }))
  it('row 3: partitions (2048–2055), (4096–6144), (8192–14335); virtual 14336', () => {
    const l = gptLayout(layers)
    expect(l.partitions.map((p) => [p.startLba, p.endLba])).toEqual([[2048, 2055], [4096, 6144], [8192, 14335]])
    expect(l.virtualTotalSectors).toBe(14336)
  })
  it('row 4: gaps pad-1 = 2040 sectors, pad-2 = 2047; no pad-0, no tail', () => {
    expect(paddingGaps(gptLayout(layers))).toEqual([{ index: 1, sectors: 2040 }, { index: 2, sectors: 2047 }])
  })
  it('row 10: names are truncated to 36 characters', () => {
    expect(partitionName(0, '0123456789abcdef0123456789abcdef')).toBe('erofs-0-s0123456789abcdef0123456789a')
    expect(gptLayout([{ path: '/layer.erofs', sizeBytes: 1 }]).partitions[0]!.name).toBe('erofs-0-sunknown')
  })
  it('row 12: more than 128 layers fail; 0-sector layer and empty list fail', () => {
    const many = Array.from({ length: 129 }, (_, i) => ({ path: `/l${i}`, sizeBytes: 4096 }))
    expect(() => gptLayout(many)).toThrow(/The layers for GPT: 129 exceeds maximum 128 partitions/)
    expect(() => gptLayout([])).toThrow(/no EROFS layers provided for GPT layout/)
    expect(() => gptLayout([{ path: '/x', sizeBytes: 0 }])).toThrow(InvalidInputError)
    expect(gptLayout(many.slice(0, 128)).partitions).toHaveLength(128)
  })
})

describe('head image (§4) — §16 rows 7, 8, 9', () => {
  const layers = SIZES.map((s, i) => ({ path: `/r/snapshots/${35 + i}/layer.erofs`, sizeBytes: s }))
  const head = renderHeadImage(gptLayout(layers), GUIDS)
  it('row 7: size, signature, LBAs, CRCs (zlib crc32)', () => {
    expect(head.length).toBe(1_048_576)
    expect(head.subarray(512, 520).toString('latin1')).toBe('EFI PART')
    const h = head.subarray(512, 512 + 92)
    expect(h.readBigUInt64LE(32)).toBe(14336n)
    expect(h.readBigUInt64LE(48)).toBe(14335n)
    expect(h.readBigUInt64LE(40)).toBe(34n)
    expect(h.readBigUInt64LE(72)).toBe(2n)
    expect(h.readUInt32LE(80)).toBe(128)
    expect(h.readUInt32LE(84)).toBe(128)
    expect(h.readUInt32LE(88)).toBe(crc32(head.subarray(1024, 1024 + 16384)))
    const z = Buffer.from(h); z.writeUInt32LE(0, 16)
    expect(h.readUInt32LE(16)).toBe(crc32(z))
    expect(head.subarray(512 + 92, 1024).every((x) => x === 0)).toBe(true)
    expect(head.subarray(34 * 512).every((x) => x === 0)).toBe(true)
  })
  it('row 8: protective MBR record and size full_total − 1 = 14368', () => {
    expect(head.subarray(0, 446).every((x) => x === 0)).toBe(true)
    expect(head.subarray(446, 454).toString('hex')).toBe('00000200eeffffff')
    expect(head.readUInt32LE(454)).toBe(1)
    expect(head.readUInt32LE(458)).toBe(14368)
    expect(head.subarray(462, 510).every((x) => x === 0)).toBe(true)
    expect(head.subarray(510, 512).toString('hex')).toBe('55aa')
  })
  it('row 9: entries: Linux-FS type, LBAs, names, GUIDs (mixed-endian)', () => {
    const parsed = parseGptHead(head)
    expect(parsed.partitions.map((p) => [p.typeGuid, p.firstLba, p.lastLba, p.name])).toEqual([
      [LINUX_FS_TYPE_GUID, 2048, 2055, 'erofs-0-s35'],
      [LINUX_FS_TYPE_GUID, 4096, 6144, 'erofs-1-s36'],
      [LINUX_FS_TYPE_GUID, 8192, 14335, 'erofs-2-s37'],
    ])
    expect(head.subarray(1024, 1040).toString('hex')).toBe('af3dc60f838472478e793d69d8477de4')
    expect(parsed.partitions.map((p) => p.uniqueGuid)).toEqual(GUIDS.partitions)
    expect(parsed.header.diskGuid).toBe(GUIDS.disk)
  })
  it('reader names the corrupt field', () => {
    const bad = Buffer.from(head); bad[512 + 40]! ^= 1
    expect(() => parseGptHead(bad)).toThrow(/GPT header CRC32/)
    const bad2 = Buffer.from(head); bad2[1024 + 200]! ^= 1
    expect(() => parseGptHead(bad2)).toThrow(/PartitionEntryArrayCRC32/)
    const bad3 = Buffer.from(head); bad3[511] = 0
    expect(() => parseGptHead(bad3)).toThrow(/MBR signature/)
    expect(() => parseGptHead(head.subarray(0, 100))).toThrow(InvalidInputError)
  })
})

describe('assembleGptDisk (§5, §6, §13) — §16 rows 4, 5, 11, 27, 28', () => {
  it('row 28 + cross-checks: sgdisk -v, qemu-img info/compare, partition bytes == layer bytes, zero bytes copied', async () => {
    const paths = await Promise.all(SIZES.map((s, i) => layer(String(35 + i), s)))
    const cdir = join(dir, 'run', 'sid', 'cid')
    const disk = await assembleGptDisk({ containerDir: cdir, layers: paths, guids: GUIDS, descriptorPath: join(cdir, 'disk.vmdk') })
    expect((await readdir(cdir)).sort()).toEqual(['disk.vmdk', 'gpt_meta_head.img', 'pad-1.img', 'pad-2.img'])
    expect((await stat(join(cdir, 'pad-1.img'))).size).toBe(1_044_480)
    expect((await stat(join(cdir, 'pad-2.img'))).size).toBe(2047 * 512)
    // Sparse: no data blocks were written for the pads.
    expect((await stat(join(cdir, 'pad-2.img'))).blocks).toBe(0)
    // Layer files are referenced in place.
    expect(disk.extents.filter((e) => paths.includes(e.path)).map((e) => e.path)).toEqual(paths)
    const raw = join(dir, 'disk.raw')
    await concatRaw(disk, raw)
    const v = await execa('sgdisk', ['-v', raw], { reject: false, all: true })
    expect(v.all).toMatch(/Main header: OK/)
    expect(v.all).toMatch(/Main partition table: OK/)
    // Only backup-header / MBR-size kinds of problems (upstream's disk has no backup GPT).
    const problems = v.all.split('\n').filter((l) => /^Problem:|^Partition\(s\) in the protective MBR/.test(l))
    expect(problems.length).toBeGreaterThan(0)
    for (const p of problems) expect(p).toMatch(/backup|secondary|protective MBR|too small to hold/i)
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', join(cdir, 'disk.vmdk')])).stdout)
    expect(info['virtual-size']).toBe(14336 * 512)
    expect(info.format).toBe('vmdk')
    const cmp = await execa('qemu-img', ['compare', '-f', 'vmdk', '-F', 'raw', join(cdir, 'disk.vmdk'), raw])
    expect(cmp.stdout).toMatch(/Images are identical/)
    const rawBytes = await readFile(raw)
    for (const [k, p] of disk.layout.partitions.entries()) {
      const layerBytes = await readFile(paths[k]!)
      const part = rawBytes.subarray(p.startLba * 512, (p.endLba + 1) * 512)
      expect(part.subarray(0, layerBytes.length).equals(layerBytes)).toBe(true)
      expect(part.subarray(layerBytes.length).every((x) => x === 0)).toBe(true)
    }
    const sg = await execa('sgdisk', ['-p', raw], { reject: false })
    expect(sg.stdout).toMatch(/erofs-2-s37/)
    await disk.files.cleanup()
    expect(await readdir(cdir)).toEqual([])
    await disk.files.cleanup() // idempotent
    for (const p of paths) expect((await stat(p)).isFile()).toBe(true)
  })
  it('opt-in backup GPT + right-sized MBR: sgdisk -v finds no problems, qemu-img compare identical', async () => {
    const paths = await Promise.all(SIZES.map((s, i) => layer(String(35 + i), s)))
    const cdir = join(dir, 'c')
    const disk = await assembleGptDisk({ containerDir: cdir, layers: paths, guids: GUIDS, backupGpt: true, rightSizedMbr: true, descriptorPath: join(cdir, 'disk.vmdk') })
    expect(disk.virtualTotalSectors).toBe(14336 + 33)
    const head = parseGptHead(await readFile(disk.headPath))
    expect(head.header.alternateLba).toBe(14336 + 32)
    expect(head.mbr.sizeLba).toBe(14336 + 32)
    const raw = join(dir, 'disk.raw')
    await concatRaw(disk, raw)
    const v = await execa('sgdisk', ['-v', raw], { reject: false, all: true })
    expect(v.all).toMatch(/No problems found/)
    const cmp = await execa('qemu-img', ['compare', '-f', 'vmdk', '-F', 'raw', join(cdir, 'disk.vmdk'), raw])
    expect(cmp.stdout).toMatch(/Images are identical/)
    await disk.files.cleanup()
    expect(await readdir(cdir)).toEqual([])
  })
  it('row 5: two 1 MiB layers: no pads; extents 2048/2048/2048; cylinders "7"', async () => {
    const paths = [await layer('1', 1 << 20), await layer('2', 1 << 20)]
    const disk = await assembleGptDisk({ containerDir: join(dir, 'c'), layers: paths })
    expect(disk.padPaths).toEqual([])
    expect(disk.extents.map((e) => [e.sectors, e.fileOffset])).toEqual([[2048, 0], [2048, 0], [2048, 0]])
    expect(disk.descriptor).toContain('ddb.geometry.cylinders = "7"')
    expect(parseVmdkDescriptor(disk.descriptor).totalSectors).toBe(6144)
    await disk.files.cleanup()
  })
  it('row 6: a layer of 2 GiB + 1 B is split into (4194304, 0) and (1, 4194304)', async () => {
    const big = join(dir, 'snapshots', 'big', 'layer.erofs')
    await mkdir(join(dir, 'snapshots', 'big'), { recursive: true })
    await writeFile(big, '')
    await truncate(big, 2 ** 31 + 1) // sparse: no data written
    const disk = await assembleGptDisk({ containerDir: join(dir, 'c'), layers: [big] })
    expect(disk.extents.filter((e) => e.path === big).map((e) => [e.sectors, e.fileOffset])).toEqual([[4194304, 0], [1, 4194304]])
    expect(parseVmdkDescriptor(disk.descriptor).totalSectors).toBe(disk.virtualTotalSectors)
    await disk.files.cleanup()
  })
  it('row 11: layers [4 KiB, empty, 4 KiB] → 2 partitions numbered 1, 2', async () => {
    const a = await layer('a', 4096); const e = await layer('e', 0); const b = await layer('b', 4096)
    const disk = await assembleGptDisk({ containerDir: join(dir, 'c'), layers: [a, e, b] })
    expect(disk.layout.partitions.map((p) => [p.number, p.path])).toEqual([[1, a], [2, b]])
    await disk.files.cleanup()
  })
  it('missing / non-regular / all-empty layers are typed errors and leave nothing behind', async () => {
    const cdir = join(dir, 'c')
    await expect(assembleGptDisk({ containerDir: cdir, layers: [join(dir, 'nope')] })).rejects.toThrow(/failed to get size of EROFS layer/)
    await mkdir(join(dir, 'adir'))
    await expect(assembleGptDisk({ containerDir: cdir, layers: [join(dir, 'adir')] })).rejects.toThrow(/is not a regular file/)
    const e = await layer('e', 0)
    await expect(assembleGptDisk({ containerDir: cdir, layers: [e] })).rejects.toThrow(/no valid EROFS layers found/)
    // Symlinks to layers are followed.
    const real = await layer('s', 4096)
    await symlink(real, join(dir, 'link.erofs'))
    const disk = await assembleGptDisk({ containerDir: cdir, layers: [join(dir, 'link.erofs')] })
    expect(disk.layout.partitions).toHaveLength(1)
    await disk.files.cleanup()
    expect(await readdir(cdir)).toEqual([])
  })
  it('a failure half-way removes what was made', async () => {
    const a = await layer('a', 4096); const b = await layer('b', 4096)
    const cdir = join(dir, 'c')
    await mkdir(join(cdir, 'disk.vmdk'), { recursive: true }) // descriptor rename onto a directory fails
    await writeFile(join(cdir, 'disk.vmdk', 'x'), 'x')
    await expect(assembleGptDisk({ containerDir: cdir, layers: [a, b], descriptorPath: join(cdir, 'disk.vmdk') })).rejects.toThrow(/failed to generate GPT VMDK/)
    expect((await readdir(cdir)).sort()).toEqual(['disk.vmdk'])
  })
  it('row 27 (files part): only files inside the container dir are removed; stale pads are tracked once', async () => {
    const cdir = join(dir, 'c'); await mkdir(cdir)
    await writeFile(join(cdir, 'pad-1.img'), 'stale')
    const a = await layer('a', 1 << 20); const b = await layer('b', 1 << 20)
    const disk = await assembleGptDisk({ containerDir: cdir, layers: [a, b] })
    expect(disk.files.paths).toEqual([join(cdir, 'gpt_meta_head.img'), join(cdir, 'pad-1.img')])
    const outside = join(dir, 'outside.img'); await writeFile(outside, 'keep')
    disk.files.track(outside)
    disk.files.track(join(cdir, 'missing.img'))
    await disk.files.cleanup()
    expect(await readdir(cdir)).toEqual([])
    expect(await readFile(outside, 'utf8')).toBe('keep')
    const f = new GptDiskFiles('/a/b'); f.track('/a/bc/x'); await f.cleanup()
  })
})

describe('head image size', () => { it('is 1 MiB', () => expect(HEAD_BYTES).toBe(1 << 20)) })
