import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { handleEmptyDirStorage, hugepageParams, nrHugepagesPath, parseKeyValueOptions } from './emptydir.ts'

let dir: string
const mounts: unknown[][] = []
const env = () => ({ mount: async (...a: unknown[]) => void mounts.push(a), sysRoot: join(dir, 'sys') })
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kataref-ed-'))
  mounts.length = 0
})
afterEach(async () => rm(dir, { recursive: true, force: true }))

describe('emptyDir storages, agent side (spec §5)', () => {
  test('options: key=value with exactly one =; comma-separated entries', () => {
    expect([...parseKeyValueOptions(['pagesize=2097152,size=4194304', 'a=b=c', 'ro', 'mode=0777'])]).toEqual([
      ['pagesize', '2097152'],
      ['size', '4194304'],
      ['mode', '0777'],
    ])
    expect(hugepageParams(['pagesize=2097152,size=8388608'])).toEqual({ pageSize: 2097152n, size: 8388608n })
    expect(() => hugepageParams(['size=8388608'])).toThrow(/pagesize/)
    expect(() => hugepageParams(['pagesize=2M,size=8388608'])).toThrow(/pagesize/)
    expect(nrHugepagesPath(2097152n)).toBe('/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages')
    expect(nrHugepagesPath(1073741824n)).toBe('/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages')
  })

  test('hugetlbfs: writes size/pagesize pages, reads back, mounts with byte options; short allocation fails', async () => {
    const f = join(dir, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages')
    await mkdir(join(f, '..'), { recursive: true })
    await writeFile(f, '0')
    const mp = join(dir, 'hp')
    await handleEmptyDirStorage({ driver: 'ephemeral', source: 'nodev', fstype: 'hugetlbfs', options: ['pagesize=2097152,size=8388608'], mountPoint: mp }, env())
    expect(await readFile(f, 'utf8')).toBe('4')
    expect(mounts).toEqual([['nodev', mp, 'hugetlbfs', ['pagesize=2097152', 'size=8388608']]])
    // a sysfs file that does not keep what was written (the kernel gave fewer pages)
    const short = { mount: env().mount, sysRoot: join(dir, 'nosys') }
    await mkdir(join(dir, 'nosys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'), { recursive: true })
    await expect(handleEmptyDirStorage({ driver: 'ephemeral', source: 'nodev', fstype: 'hugetlbfs', options: ['pagesize=2097152,size=8388608'], mountPoint: mp }, short)).rejects.toThrow(/nr_hugepages/)
  })

  test('ephemeral tmpfs: other options dropped, fsgid → group + setgid', async () => {
    const mp = join(dir, 'eph')
    await handleEmptyDirStorage({ driver: 'ephemeral', source: 'tmpfs', fstype: 'tmpfs', options: ['fsgid=1234', 'size=1M'], mountPoint: mp }, env())
    expect(mounts).toEqual([['tmpfs', mp, 'tmpfs', []]])
    const st = await stat(mp)
    expect(st.gid).toBe(1234)
    expect(st.mode & 0o2000).toBe(0o2000)
  })

  test('local: directory with mode, plus setgid when fsgid is given', async () => {
    const mp = join(dir, 'local/vol')
    await handleEmptyDirStorage({ driver: 'local', source: 'local', fstype: 'local', options: ['mode=0777', 'fsgid=2000'], mountPoint: mp }, env())
    const st = await stat(mp)
    expect(st.mode & 0o7777).toBe(0o2777)
    expect(st.gid).toBe(2000)
    expect(mounts).toEqual([])
  })
})
