import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { cgroupDir, cgroupfsCpath, expandSlice, subcgroupPath, systemdCpath, trimLeadingSlashes } from './paths.ts'
import { sharesToWeight, swapV2 } from './convert.ts'
import { CgroupError, CgroupfsManager, initSubcgroupFor } from './manager.ts'

describe('cgroup paths (spec §2, 4e3d257dc0)', () => {
  test('#7 existence-check path keeps the root for an absolute cpath (never path.resolve semantics)', () => {
    const cpath = '/docker.slice/docker-containers.slice/container'
    expect(cgroupDir('/sys/fs/cgroup', cpath)).toBe('/sys/fs/cgroup/docker.slice/docker-containers.slice/container')
    expect(cgroupDir('/sys/fs/cgroup', '///a//b')).toBe('/sys/fs/cgroup/a//b')
    expect(cgroupDir('/sys/fs/cgroup/', 'rel/x')).toBe('/sys/fs/cgroup/rel/x')
    expect(trimLeadingSlashes('///x')).toBe('x')
  })
  test('#8 subcgroup path: /init/ appends init, / leaves the cpath unchanged (absolute stays absolute)', () => {
    const cpath = '/docker.slice/docker-containers.slice/container'
    expect(subcgroupPath(cpath, '/init/')).toBe(`${cpath}/init`)
    expect(subcgroupPath(cpath, '/')).toBe(cpath)
    expect(subcgroupPath('a/b', 'init')).toBe('a/b/init')
  })
  test('#14 systemd cgroupsPath → cpath', () => {
    expect(systemdCpath('system.slice:kata_agent:123', 'x')).toBe('system.slice/kata_agent-123.scope')
    expect(systemdCpath('kubepods-besteffort-pod1.slice:cri-containerd:abc', 'x')).toBe(
      'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope',
    )
    expect(() => systemdCpath('a:b', 'x')).toThrow(/invalid cpath/)
    expect(() => systemdCpath('foo:x:y', 'x')).toThrow(/invalid slice/)
    expect(systemdCpath('ab', 'c9')).toBe('system.slice/kata_agent-c9.scope')
    expect(systemdCpath('-.slice::n', 'x')).toBe('/n.scope')
    expect(systemdCpath(':p:n.slice', 'x')).toBe('system.slice/n.slice')
    expect(() => expandSlice('a--b.slice')).toThrow(/empty part/)
  })
  test('#15 cgroupfs cpath', () => {
    expect(cgroupfsCpath('', 'c1')).toBe('/c1')
    expect(cgroupfsCpath('/kubepods/x/c1', 'c1')).toBe('/kubepods/x/c1')
    expect(cgroupfsCpath('system.slice:kata:c1', 'c1')).toBe('system.slice/kata/c1')
  })
  test('cpu shares → cpu.weight; memory+swap → memory.swap.max', () => {
    expect(sharesToWeight(0)).toBe(0n)
    expect(sharesToWeight(2)).toBe(1n)
    expect(sharesToWeight(1024)).toBe(39n)
    expect(sharesToWeight(262144)).toBe(10000n)
    expect(swapV2(-1n, 0n)).toBe(-1n)
    expect(swapV2(100n, -1n)).toBe(-1n)
    expect(swapV2(100n, 0n)).toBe(0n)
    expect(swapV2(100n, 300n)).toBe(200n)
    expect(() => swapV2(0n, 300n)).toThrow(/without memory limit/)
    expect(() => swapV2(-1n, 300n)).toThrow(/without memory limit/)
    expect(() => swapV2(-5n, 300n)).toThrow(/invalid memory value/)
    expect(() => swapV2(400n, 300n)).toThrow()
  })
})

describe('cgroupfs manager on a fake root (host)', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kataref-cg-'))
  })
  afterEach(async () => rm(root, { recursive: true, force: true }))

  test('#9 init subcgroup: v2 with init → /init/, without → /; v1 or hybrid with init → /', async () => {
    const cpath = '/kubepods/pod1/c1'
    await mkdir(join(root, 'kubepods/pod1/c1'), { recursive: true })
    expect(await initSubcgroupFor(root, cpath, 'unified')).toBe('/')
    await mkdir(join(root, 'kubepods/pod1/c1/init'))
    expect(await initSubcgroupFor(root, cpath, 'unified')).toBe('/init/')
    expect(await initSubcgroupFor(root, cpath, 'legacy')).toBe('/')
    expect(await initSubcgroupFor(root, cpath, 'hybrid')).toBe('/')
  })

  test('apply re-evaluates init at every call; writes go under the root for absolute and relative cpaths', async () => {
    for (const cpath of ['/abs/c1', 'rel/c2']) {
      const m = new CgroupfsManager(cpath, { root, mode: 'unified' })
      await m.create()
      const dir = join(root, cpath)
      expect(await m.apply(11)).toBe(`${dir}/cgroup.procs`)
      expect(await readFile(`${dir}/cgroup.procs`, 'utf8')).toBe('11')
      await mkdir(`${dir}/init`)
      expect(await m.apply(12)).toBe(`${dir}/init/cgroup.procs`)
      expect(await readFile(`${dir}/init/cgroup.procs`, 'utf8')).toBe('12')
    }
  })

  test('a non-directory init still counts as existing and the write fails naming the file and ENOTDIR', async () => {
    const m = new CgroupfsManager('/c3', { root, mode: 'unified' })
    await m.create()
    await writeFile(join(root, 'c3/init'), '')
    const err = await m.apply(5).catch((e) => e)
    expect(err).toBeInstanceOf(CgroupError)
    expect(err.errno).toBe('ENOTDIR')
    expect(err.file).toBe(join(root, 'c3/init/cgroup.procs'))
    expect(err.message).toContain('add task 5 to cgroup')
    expect(err.message).toContain('ENOTDIR')
  })

  test('destroy removes the cgroup tree deepest first', async () => {
    const m = new CgroupfsManager('/x/c4', { root, mode: 'legacy' })
    await m.create()
    await mkdir(join(root, 'x/c4/init'))
    await m.destroy()
    await expect(readFile(join(root, 'x/c4/init'))).rejects.toThrow()
  })
})
