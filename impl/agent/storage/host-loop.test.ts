// The handler on a real kernel, as far as this host allows (no device-mapper, no GPT scanning):
// plain EROFS layers on loop devices, real mount(2) via koffi, real overlay, real teardown and a
// real rollback. Root + mkfs.erofs + losetup + erofs/overlay in the kernel, else skipped.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KoffiDmBackend, LinuxNodeOps } from '../../dmverity/index.ts'
import { nullLogger } from '../../types/logger.ts'
import { erofsLower } from './fake-storage-context.ts'
import { LinuxMounter, parseMountInfo } from './linux-mounter.ts'
import { MultiLayerErofsError } from './multi-layer-errors.ts'
import { MultiLayerErofsState, type StorageEnv } from './multi-layer-state.ts'
import { systemClock, type DeviceResolver, type Mounter } from './storage-context.ts'

const run = promisify(execFile)
const fsList = existsSync('/proc/filesystems') ? readFileSync('/proc/filesystems', 'utf8') : ''
const capable = process.getuid?.() === 0 && existsSync('/dev/loop-control') && /\berofs\b/.test(fsList) && /\boverlay\b/.test(fsList) &&
  ['/usr/bin/mkfs.erofs', '/usr/sbin/losetup'].every((p) => existsSync(p))

describe.runIf(capable)('multi-layer erofs on loop devices (host kernel)', () => {
  let dir: string
  const loops: string[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kataref-loop-'))
    for (let i = 0; i < 3; i++) {
      const src = join(dir, `src-${i}`)
      await mkdir(src)
      await writeFile(join(src, 'who'), String(i))
      await writeFile(join(src, `layer-${i}`), 'x')
      await run('mkfs.erofs', [join(dir, `l${i}.img`), src])
      const { stdout } = await run('losetup', ['-f', '--show', '-r', join(dir, `l${i}.img`)])
      loops.push(stdout.trim())
    }
  })

  afterAll(async () => {
    const mounted = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(dir)).reverse()
    for (const m of mounted) await run('umount', [m.mountPoint]).catch(() => undefined)
    for (const l of loops) await run('losetup', ['-d', l]).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })

  function env(mounter: Mounter = new LinuxMounter()): StorageEnv {
    const devices: DeviceResolver = {
      resolveBaseDevice: async (s) => loops[Number(s.source)]!,
      waitForPartition: async () => undefined,
    }
    return { logger: nullLogger, dm: new KoffiDmBackend(), nodes: new LinuxNodeOps(), mounter, devices, devmapper: false, clock: systemClock, runDir: join(dir, 'run') }
  }
  const mountsUnder = async () => parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint.startsWith(dir)).map((m) => `${m.fstype} ${m.mountPoint}`)
  const storages = (target: string) => [2, 0, 1].map((i) => erofsLower(i, { source: String(i), gpt: false, verity: false, mountPoint: target }))

  it('mounts 3 EROFS lowers + overlay; lower-0 wins; RemoveContainer unmounts everything', async () => {
    const target = join(dir, 'c1-rootfs')
    const state = new MultiLayerErofsState(env())
    const r = (await state.addStorages(storages(target), 'c1'))!
    expect(r.tempMountPoints).toHaveLength(3)
    // request order kept (no GPT): lower-0 is source 2
    expect(await readFile(join(target, 'who'), 'utf8')).toBe('2')
    for (const i of [0, 1, 2]) expect(existsSync(join(target, `layer-${i}`))).toBe(true)
    await writeFile(join(target, 'written'), 'upper')
    expect((await mountsUnder()).sort()).toEqual([`overlay ${target}`, ...[0, 1, 2].map((i) => `erofs ${join(dir, 'run/c1/multi-layer', `lower-${i}`)}`)].sort())
    const report = await state.removeContainer('c1')
    expect(report.failures).toEqual([])
    expect(await mountsUnder()).toEqual([])
  })

  it('G3 on a real kernel: overlay failure unmounts the real lowers and removes the scratch dirs', async () => {
    const target = join(dir, 'c2-rootfs')
    const real = new LinuxMounter()
    const failingOverlay: Mounter = {
      mount: async (m) => { if (m.fstype === 'overlay') throw new Error('injected overlay failure'); await real.mount(m) },
      umount: (t) => real.umount(t),
    }
    const state = new MultiLayerErofsState(env(failingOverlay))
    const e = await state.addStorages(storages(target), 'c2').catch((x) => x)
    expect(e).toBeInstanceOf(MultiLayerErofsError)
    expect(e.step).toBe('overlay')
    expect(await mountsUnder()).toEqual([])
    expect(existsSync(join(dir, 'run/c2'))).toBe(false)
    expect(existsSync(target)).toBe(false)
  })

  it('verity requested with devicemapper off fails closed on a real kernel, nothing mounted', async () => {
    const state = new MultiLayerErofsState(env())
    const s = erofsLower(1, { source: '0', mountPoint: join(dir, 'c3-rootfs') })
    const e = await state.addStorages([s], 'c3').catch((x) => x)
    expect(e.step).toBe('verity-disabled')
    expect(await mountsUnder()).toEqual([])
  })
})
