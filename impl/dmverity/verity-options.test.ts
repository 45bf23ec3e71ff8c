import { describe, expect, it } from 'vitest'
import { hasDmverityMarker, parseDmverityOptions, parseStrictUnsigned, U64_MAX } from './verity-options.ts'
import { DmVerityOptionsError } from './errors.ts'

const B1 = [
  'X-kata.dmverity.roothash=aabbccdd',
  'X-kata.dmverity.hashoffset=8192',
  'X-kata.dmverity.blocksize=4096',
  'X-kata.dmverity.hashsize=4096',
  'X-kata.dmverity.salt=0000000000000000',
  'X-kata.dmverity.no-superblock=false',
]
const without = (prefix: string) => B1.filter((o) => !o.startsWith(prefix))
const withOpt = (prefix: string, value: string) => [...without(prefix), `${prefix}${value}`]

describe('parse_dmverity_options (§6)', () => {
  it('B1: full record', () => {
    expect(parseDmverityOptions(B1)).toEqual({
      hashtype: 'sha256', hash: 'aabbccdd', blocknum: 2n, blocksize: 4096n, hashsize: 4096n, offset: 8192n,
      salt: '0000000000000000', version: 1, noSuperblock: false,
    })
  })
  it('B2: missing roothash', () => {
    expect(() => parseDmverityOptions(without('X-kata.dmverity.roothash='))).toThrow(/roothash is required/)
  })
  it('B3: hashoffset=0 or absent', () => {
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', '0'))).toThrow(/hashoffset is required/)
    expect(() => parseDmverityOptions(without('X-kata.dmverity.hashoffset='))).toThrow(/hashoffset is required/)
  })
  it('B4: defaults with only roothash + hashoffset', () => {
    const info = parseDmverityOptions(['X-kata.dmverity.roothash=ab', 'X-kata.dmverity.hashoffset=1048576'])
    expect(info).toEqual({ hashtype: 'sha256', hash: 'ab', blocknum: 256n, blocksize: 4096n, hashsize: 4096n, offset: 1048576n, version: 1, noSuperblock: false })
    expect('salt' in info).toBe(false)
  })
  it('B5: unaligned hashoffset', () => {
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', '6144'))).toThrow('dm-verity hashoffset 6144 is not aligned to blocksize 4096')
  })
  it('B6: zero blocksize or hashsize', () => {
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.blocksize=', '0'))).toThrow('dm-verity blocksize/hashsize must be non-zero')
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.hashsize=', '0'))).toThrow('dm-verity blocksize/hashsize must be non-zero')
  })
  it.each(['abc', '-1', '', '18446744073709551616', ' 1', '0x10', '1_0'])('B7: hashoffset=%j is invalid', (v) => {
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', v))).toThrow('Invalid hashoffset value')
  })
  it('B8: leading + accepted; leading zeros and u64 max accepted', () => {
    expect(parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', '+8192')).offset).toBe(8192n)
    expect(parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', '0008192')).offset).toBe(8192n)
    expect(parseStrictUnsigned('18446744073709551615', U64_MAX)).toBe(U64_MAX)
  })
  it.each(['TRUE', '1', 'yes', ''])('B9: no-superblock=%j is invalid', (v) => {
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.no-superblock=', v))).toThrow('Invalid no-superblock value')
  })
  it.each(['', '-'])('B10: salt=%j means none', (v) => {
    expect(parseDmverityOptions(withOpt('X-kata.dmverity.salt=', v)).salt).toBeUndefined()
  })
  it('B11: later duplicates win', () => {
    expect(parseDmverityOptions([...B1, 'X-kata.dmverity.roothash=aa', 'X-kata.dmverity.roothash=bb']).hash).toBe('bb')
  })
  it('B12: a parse error wins over a missing roothash', () => {
    expect(() => parseDmverityOptions([...without('X-kata.dmverity.roothash='), 'X-kata.dmverity.blocksize=abc'])).toThrow('Invalid blocksize value')
  })
  it('other integer errors name their option; u32 range for hashtype', () => {
    expect(() => parseDmverityOptions(withOpt('X-kata.dmverity.hashsize=', 'x'))).toThrow('Invalid hashsize value')
    expect(() => parseDmverityOptions([...B1, 'X-kata.dmverity.hashtype=4294967296'])).toThrow('Invalid hash type value')
    expect(parseDmverityOptions([...B1, 'X-kata.dmverity.hashtype=0']).version).toBe(0)
  })
  it('errors are typed DmVerityOptionsError with INVALID_ARGUMENT; full u64 values printed', () => {
    const big = '18446744073709547520' // 2^64 - 4096: aligned, so it parses
    expect(parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', big)).offset).toBe(18446744073709547520n)
    try {
      parseDmverityOptions(withOpt('X-kata.dmverity.hashoffset=', '18446744073709551615'))
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(DmVerityOptionsError)
      expect((e as DmVerityOptionsError).code).toBe(3)
      expect((e as Error).message).toBe('dm-verity hashoffset 18446744073709551615 is not aligned to blocksize 4096')
    }
  })
  it('the marker is not required by the parser; detector finds it', () => {
    expect(hasDmverityMarker(B1)).toBe(false)
    expect(hasDmverityMarker([...B1, 'X-kata.dmverity-enabled=true'])).toBe(true)
    expect(hasDmverityMarker(['X-kata.dmverity-enabled=TRUE'])).toBe(false)
  })
})
