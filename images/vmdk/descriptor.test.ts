import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtemp, rm, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { parseVmdkDescriptor, renderVmdkDescriptor, chunkExtents, openFlatVmdk } from './index.ts'
import { InvalidInputError } from '../../impl/types/errors.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-vmdk-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('VMDK descriptor parser', () => {
  it('reads a descriptor written by qemu-img (twoGbMaxExtentFlat, relative names)', async () => {
    const p = join(dir, 't.vmdk')
    await execa('qemu-img', ['create', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', p, '5G'])
    const d = parseVmdkDescriptor(await readFile(p))
    expect(d.createType).toBe('twoGbMaxExtentFlat')
    expect(d.extents.map((e) => [e.access, e.sectors, e.type, e.path, e.fileOffset])).toEqual([
      ['RW', 4194304, 'FLAT', 't-f001.vmdk', 0], ['RW', 4194304, 'FLAT', 't-f002.vmdk', 0], ['RW', 2097152, 'FLAT', 't-f003.vmdk', 0]])
    expect(d.totalSectors).toBe(10 * 2 ** 20)
    expect(d.ddb['ddb.geometry.cylinders']).toBe('10402')
    const v = await openFlatVmdk(p)
    expect((await v.read(2 ** 31 - 2, 4)).equals(Buffer.alloc(4))).toBe(true)
  })
  it('round-trips our own rendering, CRLF tolerated', () => {
    const ext = [...chunkExtents('/a b/layer', 4194305), { path: '/h', sectors: 2048, fileOffset: 0 }]
    const text = renderVmdkDescriptor(ext)
    const d = parseVmdkDescriptor(text.replaceAll('\n', '\r\n'))
    expect(d.extents.map((e) => ({ path: e.path, sectors: e.sectors, fileOffset: e.fileOffset }))).toEqual(ext)
    expect(d.cid).toBe('fffffffe')
    expect(d.parentCid).toBe('ffffffff')
  })
  it('names the line and problem for bad descriptors', () => {
    expect(() => parseVmdkDescriptor('hello')).toThrow(/VMDK descriptor line 1/)
    expect(() => parseVmdkDescriptor('# Disk DescriptorFile\nversion=1\ncreateType="x"\nRW x FLAT "a" 0\n')).toThrow(/line 4/)
    expect(() => parseVmdkDescriptor('# Disk DescriptorFile\nversion=1\ncreateType="x"\n')).toThrow(/no extent lines/)
    expect(() => parseVmdkDescriptor('# Disk DescriptorFile\ncreateType="x"\nRW 1 FLAT "a" 0\n')).toThrow(/VMDK descriptor version/)
    expect(() => parseVmdkDescriptor(Buffer.from([0x23, 0, 1]))).toThrow(InvalidInputError)
    expect(() => renderVmdkDescriptor([{ path: 'a"b', sectors: 1, fileOffset: 0 }])).toThrow(/quote/)
  })
})
