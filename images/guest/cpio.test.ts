import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { withParents, writeCpio } from './cpio.ts'

describe('newc cpio writer', () => {
  const entries = withParents([
    { kind: 'file', path: 'etc/kataref/modules', data: Buffer.from('a.ko\nb.ko\n') },
    { kind: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'etc' },
  ])

  it('adds parents once, before their children', () => {
    const paths = entries.map((e) => e.path)
    expect(paths).toEqual(['etc', 'etc/kataref', 'etc/kataref/modules', 'init', 'bin', 'bin/sh', 'dev', 'dev/console'])
  })

  it('is deterministic and 4-byte aligned', () => {
    const a = writeCpio(entries)
    expect(a.equals(writeCpio(entries))).toBe(true)
    expect(a.length % 4).toBe(0)
    expect(a.subarray(0, 6).toString()).toBe('070701')
  })

  it('is read back by cpio(1) with contents, modes and links intact', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kataref-cpio-'))
    try {
      const archive = join(dir, 'a.cpio')
      writeFileSync(archive, writeCpio(entries.filter((e) => e.kind !== 'chardev')))
      const list = execFileSync('cpio', ['-it', '--quiet', '-F', archive], { encoding: 'utf8' }).trim().split('\n')
      expect(list).toEqual(['etc', 'etc/kataref', 'etc/kataref/modules', 'init', 'bin', 'bin/sh', 'dev'])
      const out = join(dir, 'x')
      execFileSync('sh', ['-c', `mkdir ${out} && cd ${out} && cpio -id --quiet -F ${archive}`])
      expect(readFileSync(join(out, 'etc/kataref/modules'), 'utf8')).toBe('a.ko\nb.ko\n')
      expect(statSync(join(out, 'init')).mode & 0o777).toBe(0o755)
      expect(readlinkSync(join(out, 'bin/sh'))).toBe('busybox')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
