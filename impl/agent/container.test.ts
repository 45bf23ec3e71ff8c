// Containers on the host (root + busybox with unshare/nsenter): the same launcher the guest uses.
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { create } from '@bufbuild/protobuf'
import { SpecSchema, ProcessSchema } from '../gen/oci_pb.ts'
import { nullLogger } from '../types/logger.ts'
import { ContainerManager } from './container.ts'
import { initLaunchScript, shq } from './process/launcher.ts'

const BB = '/usr/bin/busybox'
const canRun = process.getuid?.() === 0 && existsSync(BB)
let dir: string
let m: ContainerManager

async function makeRootfs(r: string) {
  await mkdir(join(r, 'bin'), { recursive: true })
  for (const d of ['proc', 'dev', 'tmp', 'work']) await mkdir(join(r, d))
  await copyFile(BB, join(r, 'bin/busybox'))
  for (const a of ['sh', 'echo', 'cat', 'env', 'id', 'sleep', 'pwd', 'hostname', 'ls', 'kill']) await symlink('busybox', join(r, 'bin', a))
}

const text = async (cid: string, exec: string, which: 'stdout' | 'stderr' = 'stdout') => {
  let out = ''
  for (;;) {
    const b = which === 'stdout' ? await m.readStdout(cid, exec, 4096) : await m.readStderr(cid, exec, 4096)
    if (b.length === 0) return out
    out += Buffer.from(b).toString()
  }
}

const spec = (args: string[], over: Record<string, unknown> = {}) =>
  create(SpecSchema, { Process: create(ProcessSchema, { Args: args, Env: ['PATH=/bin', 'FOO=bar baz'], Cwd: '/work', User: { UID: 0, GID: 0 } as never }), Root: { Path: join(dir, 'rootfs') } as never, Hostname: 'ctr', ...over })

describe.skipIf(!canRun)('containers on the host (root)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kataref-ctr-'))
    await makeRootfs(join(dir, 'rootfs'))
    m = new ContainerManager({ sharedContainersDir: dir, busybox: BB }, nullLogger)
  })
  afterAll(async () => {
    await m?.removeAll()
    await rm(dir, { recursive: true, force: true })
  })

  test('init runs as PID 1 in the rootfs with exactly its env, cwd and hostname; exit code and stdout', async () => {
    await m.create('c1', 'c1', spec(['sh', '-c', 'echo pid=$$; pwd; hostname; env | sort; ls /proc/1 >/dev/null && echo proc-ok; echo err >&2; exit 7']))
    await m.start('c1')
    const [out, err, code] = await Promise.all([text('c1', 'c1'), text('c1', 'c1', 'stderr'), m.wait('c1', '')])
    expect(code).toBe(7)
    expect(out).toContain('pid=1\n/work\nctr\n')
    expect(out).toContain('FOO=bar baz\nPATH=/bin\n')
    expect(out).not.toMatch(/KATAREF|_kataref/)
    expect(out).toContain('proc-ok')
    expect(err).toBe('err\n')
    await m.remove('c1')
  })

  test('SIGKILL of the init → 137; exec with stdin, SIGTERM of an exec → 143; concurrent waiters agree', async () => {
    await m.create('c2', 'c2', spec(['sleep', '300']))
    await m.start('c2')
    await m.exec('c2', 'e1', create(ProcessSchema, { Args: ['sh', '-c', 'read x; echo got:$x; echo $$'], Env: ['PATH=/bin'], Cwd: '/' }))
    expect(await m.writeStdin('c2', 'e1', Buffer.from('hello\n'))).toBe(6)
    m.closeStdin('c2', 'e1')
    const out = await text('c2', 'e1')
    expect(out).toMatch(/^got:hello\n\d+\n$/)
    expect(Number(out.split('\n')[1])).toBeGreaterThan(1) // inside the init's PID namespace
    expect(await m.wait('c2', 'e1')).toBe(0)

    await m.exec('c2', 'e2', create(ProcessSchema, { Args: ['sh', '-c', 'kill -TERM $$; sleep 5'], Env: [], Cwd: '/' }))
    expect(await m.wait('c2', 'e2')).toBe(143)

    await m.exec('c2', 'e3', create(ProcessSchema, { Args: ['sh', '-c', 'sleep 0.3; exit 3'], Env: [], Cwd: '/' }))
    expect(await Promise.all([m.wait('c2', 'e3'), m.wait('c2', 'e3'), m.wait('c2', 'e3')])).toEqual([3, 3, 3])

    await m.signal('c2', '', 15) // PID 1 of its namespace ignores SIGTERM (no handler)
    await new Promise((r) => setTimeout(r, 300))
    expect(m.get('c2').init.exited).toBe(false)
    const waiters = [m.wait('c2', ''), m.wait('c2', 'c2')]
    await m.signal('c2', '', 9)
    expect(await Promise.all(waiters)).toEqual([137, 137])
    await m.remove('c2')
    expect(m.containers.has('c2')).toBe(false)
  })

  test('#13 without linux.resources no cgroup is made and nothing is written', async () => {
    const c = await m.create('c3', 'c3', spec(['true']))
    expect(c.cgroup).toBeUndefined()
    await m.remove('c3')
  })

  test('the launcher quotes every value', () => {
    expect(shq("a'b")).toBe(`'a'\\''b'`)
    const s = initLaunchScript({ args: ["$(reboot)", "'"], env: [], cwdHostPath: '/r/`x`', uid: 0, gid: 0, rootfs: '/r', hostname: '$h', readonlyRootfs: false })
    expect(s).toContain('read -r _kataref_gate <&3')
    expect(s).not.toMatch(/[^']\$\(reboot\)/)
  })
})
