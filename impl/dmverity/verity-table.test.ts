import { describe, expect, it } from 'vitest'
import { buildDmverityDeviceName, finalComponent, nameFromMapperPath, validateDmName } from './device-name.ts'
import { parseDmverityOptions, type DmVerityInfo } from './verity-options.ts'
import { formatTableLine, hashStartBlock, validateVerityTableInput, verityTarget } from './verity-table.ts'

const B1: DmVerityInfo = parseDmverityOptions([
  'X-kata.dmverity.roothash=aabbccdd', 'X-kata.dmverity.hashoffset=8192', 'X-kata.dmverity.blocksize=4096',
  'X-kata.dmverity.hashsize=4096', 'X-kata.dmverity.salt=0000000000000000', 'X-kata.dmverity.no-superblock=false',
])

describe('device name (§7)', () => {
  it('B13: kata-verity-vdb1-off8192-aabbccdd', () => {
    expect(buildDmverityDeviceName('/dev/vdb1', 8192n, 'aabbccdd')).toBe('kata-verity-vdb1-off8192-aabbccdd')
  })
  it('B14: only the first 32 hash chars are used', () => {
    const hash = '0123456789abcdef'.repeat(4)
    expect(buildDmverityDeviceName('/dev/nvme0n1p2', 1048576n, hash)).toBe(`kata-verity-nvme0n1p2-off1048576-${hash.slice(0, 32)}`)
  })
  it('final component: trailing slash ignored, none for /', () => {
    expect(finalComponent('/dev/vdb1/')).toBe('vdb1')
    expect(finalComponent('/')).toBe('')
    expect(buildDmverityDeviceName('/', 1n, 'ab')).toBe('kata-verity--off1-ab')
  })
  it('upstream-gap G8 (mirrored): a 128-byte cut result is rejected by the 127-byte DM name rule', () => {
    const name = buildDmverityDeviceName(`/dev/${'x'.repeat(200)}`, 8192n, 'aa')
    expect(name.length).toBe(128)
    expect(() => validateDmName(name)).toThrow(/at most 127/)
    expect(() => validateDmName(name.slice(0, 127))).not.toThrow()
    expect(() => validateDmName('')).toThrow(/empty/)
  })
  it('name from node path strips /dev/mapper/ only', () => {
    expect(nameFromMapperPath('/dev/mapper/X')).toBe('X')
    expect(nameFromMapperPath('X')).toBe('X')
  })
})

describe('hash_start_block (§8.1)', () => {
  it('B15: offset 8192, hashsize 4096 → 3 with superblock, 2 without', () => {
    expect(hashStartBlock(8192n, 4096n, false)).toBe(3n)
    expect(hashStartBlock(8192n, 4096n, true)).toBe(2n)
  })
  it('B16: offset 1048576, hashsize 512, superblock → 2049', () => {
    expect(hashStartBlock(1048576n, 512n, false)).toBe(2049n)
  })
  it('superblock adds ceil(512/hashsize): 2 blocks for hashsize 256', () => {
    expect(hashStartBlock(1024n, 256n, false)).toBe(6n)
  })
})

describe('verity table (§8.2, §8.3)', () => {
  it('B17: table for B1 on /dev/vdb1', () => {
    expect(formatTableLine(verityTarget(B1, '/dev/vdb1'))).toBe('0 16 verity 1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 aabbccdd 0000000000000000')
  })
  it('B10: no salt ends the table with " -"', () => {
    const { salt: _s, ...noSalt } = B1
    expect(formatTableLine(verityTarget(noSalt, '/dev/vdb1'))).toMatch(/ aabbccdd -$/)
  })
  it('no-superblock shifts hash_start by one block', () => {
    expect(verityTarget({ ...B1, noSuperblock: true }, '/dev/vdb1').params).toBe('1 /dev/vdb1 /dev/vdb1 4096 4096 2 2 sha256 aabbccdd 0000000000000000')
  })
})

describe('kataref: values that would change the table are rejected before any ioctl', () => {
  it.each([
    ['roothash with a space', { hash: 'aa bb' }, /roothash/],
    ['roothash with a newline', { hash: 'aabb\n0 1 zero' }, /roothash/],
    ['non-hex roothash', { hash: 'xyzw' }, /roothash/],
    ['odd-length roothash', { hash: 'abc' }, /roothash/],
    ['salt with a space', { salt: '00 00' }, /salt/],
    ['non-hex salt', { salt: 'zz' }, /salt/],
    ['algorithm with a space', { hashtype: 'sha256 1' }, /algorithm/],
  ] as const)('%s', (_, patch, re) => {
    expect(() => validateVerityTableInput({ ...B1, ...patch } as DmVerityInfo, '/dev/vdb1')).toThrow(re)
  })
  it('partition path with whitespace', () => {
    expect(() => validateVerityTableInput(B1, '/dev/vdb1 /dev/vda')).toThrow(/data device/)
  })
  it('G9 fixed: hashoffset not a multiple of hashsize is rejected instead of truncating hash_start_block', () => {
    const info = parseDmverityOptions(['X-kata.dmverity.roothash=aa', 'X-kata.dmverity.hashoffset=8192', 'X-kata.dmverity.blocksize=1024', 'X-kata.dmverity.hashsize=16384'])
    expect(hashStartBlock(info.offset, info.hashsize, true)).toBe(0n) // what upstream would load
    expect(() => validateVerityTableInput(info, '/dev/vdb1')).toThrow(/not aligned to hashsize 16384/)
  })
  it('accepts the upstream host defaults (64 hex zeros salt, sha256)', () => {
    expect(() => validateVerityTableInput({ ...B1, salt: '0'.repeat(64), hash: 'ab'.repeat(32) }, '/dev/vdb1')).not.toThrow()
  })
})
