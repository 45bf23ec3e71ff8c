// End to end with the real containerd 1.6 (protocols.md §4): a private containerd (scratch root/state/
// socket, CRI off) runs `ctr run --runtime io.containerd.kataref.v2` against our shim binary, which
// boots one QEMU guest per container and drives the agent. Image built locally and imported (§4.2).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { release } from 'node:os'
import { afterAll, beforeAll } from 'vitest'
import { scenario, test, expect } from '../harness/scenario.ts'
import { buildGuestImages } from '../images/guest/index.ts'
import { IMAGE, RUNTIME, shimQemus, startContainerdWithBusybox, type PrivateContainerd } from './_support/containerd.ts'

let dir: string
let cd: PrivateContainerd | undefined
const shimSockets = () => (existsSync('/run/containerd/s') ? readdirSync('/run/containerd/s') : [])
let socketsBefore: string[] = []

scenario(
  {
    name: 'ctr-run',
    upstream: 'containerd 1.6 shim v2 contract as served by containerd-shim-kata-v2 (src/runtime/pkg/containerd-shim-v2): start/delete actions, Task service, events',
    requires: ['qemu', 'containerd', 'root'],
  },
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kataref-ctr-'))
      socketsBefore = shimSockets()
      cd = await startContainerdWithBusybox(dir)
    })
    afterAll(async () => {
      await cd?.stop()
      rmSync(dir, { recursive: true, force: true })
    })

    test('ctr run --rm busybox echo hi: output "hi", exit 0; containerd received TaskCreate/Start/Exit/Delete; no shim socket, no qemu left', async () => {
      // `ctr events` shows what containerd received from the shim.
      const ev = spawn('ctr', ['-a', cd!.socket, 'events'], { stdio: ['ignore', 'pipe', 'ignore'] })
      let events = ''
      ev.stdout.on('data', (d: Buffer) => (events += d.toString()))
      await new Promise((r) => setTimeout(r, 300))
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'hi-test', 'echo', 'hi'])
      await new Promise((res) => setTimeout(res, 500))
      ev.kill()
      expect(r.stderr).toBe('')
      expect(r.stdout).toBe('hi\n')
      expect(r.code).toBe(0)
      const topics = events.split('\n').map((l) => /\/tasks\/[a-z-]+/.exec(l)?.[0]).filter(Boolean)
      expect(topics).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'])
      expect(cd!.log()).toContain('"msg":"starting qemu"') // the QEMU command line is logged at info
      expect(shimSockets()).toEqual(socketsBefore)
      expect(shimQemus()).toEqual([])
      expect((await cd!.ctr(['task', 'ls', '-q'])).stdout.trim()).toBe('')
    })

    test('exit status travels: sh -c "exit 3" makes ctr exit 3; stderr reaches ctr', async () => {
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'exit-test', 'sh', '-c', 'echo oops >&2; exit 3'])
      expect(r.stdout).toBe('')
      expect(r.stderr).toBe('oops\n')
      expect(r.code).toBe(3)
    })

    test('sh -c "exit 42" makes ctr run exit 42', async () => {
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'exit42-test', 'sh', '-c', 'exit 42'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(42)
    })

    test('foreground ctr run of a sleep killed from outside with ctr task kill -s SIGKILL exits 137', async () => {
      const id = 'fgkill-test'
      const run = new Promise<{ code: number | null; stderr: string }>((res) => {
        const c = spawn('ctr', ['-a', cd!.socket, 'run', '--runtime', RUNTIME, '--rm', IMAGE, id, 'sleep', '1000'], { stdio: ['ignore', 'ignore', 'pipe'] })
        let stderr = ''
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        const t = setTimeout(() => c.kill('SIGKILL'), 300_000)
        c.on('close', (code) => (clearTimeout(t), res({ code, stderr })))
      })
      let ls = ''
      for (let i = 0; i < 2400 && !new RegExp(`${id}\\s+\\d+\\s+RUNNING`).test(ls); i++) {
        ls = (await cd!.ctr(['task', 'ls'])).stdout
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(ls).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`))
      const k = await cd!.ctr(['task', 'kill', '-s', 'SIGKILL', id])
      expect(k.code).toBe(0)
      const r = await run
      expect(r.stderr).toBe('')
      expect(r.code).toBe(137)
      expect(shimQemus()).toEqual([])
    })

    test('3 MiB of stdout arrives complete: byte count and sha256 equal the generated data', async () => {
      const N = 3 * 1024 * 1024
      const line = 'abcdefghijklmnopqrstuvwxyz01234' // + "\n" = 32 bytes
      const expected = `${line}\n`.repeat(N / 32)
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'big-test', 'sh', '-c', `busybox yes ${line} | busybox head -c ${N}`])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout.length).toBe(N)
      const sha = (s: string) => createHash('sha256').update(s).digest('hex')
      expect(sha(r.stdout)).toBe(sha(expected))
    })

    test('two ctr run at once (two VMs) both succeed with their own output', async () => {
      const [a, b] = await Promise.all([
        cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'par-a', 'echo', 'from-a']),
        cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'par-b', 'echo', 'from-b']),
      ])
      expect([a.stderr, b.stderr]).toEqual(['', ''])
      expect([a.stdout, b.stdout]).toEqual(['from-a\n', 'from-b\n'])
      expect([a.code, b.code]).toEqual([0, 0])
      expect(shimQemus()).toEqual([])
    })

    test('uname -r in the task is the guest kernel, not the host kernel', async () => {
      const img = await buildGuestImages({ progress: false })
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'uname-test', 'busybox', 'uname', '-r'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout.trim()).toBe(img.kernelVersion)
      expect(r.stdout.trim()).not.toBe(release())
    })

    test('ctr run: stdin piped into ctr reaches cat in the guest, EOF ends it', async () => {
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        const c = spawn('ctr', ['-a', cd!.socket, 'run', '--runtime', RUNTIME, '--rm', IMAGE, 'stdin-test', 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        c.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        const t = setTimeout(() => c.kill('SIGKILL'), 240_000)
        c.on('close', (code) => (clearTimeout(t), res({ code, stdout, stderr })))
        c.stdin.end('line one\nline two\n')
      })
      expect(r.stderr).toBe('')
      expect(r.stdout).toBe('line one\nline two\n')
      expect(r.code).toBe(0)
    })

    test('static sizing from the OCI spec: --cpus 1 --memory-limit 256 MiB → overhead 0.2/32 added → -smp 2 -m 288M; the guest sees 2 CPUs and < 288 MiB', async () => {
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', '--cpus', '1', '--memory-limit', String(256 * 1024 * 1024), IMAGE, 'size-test', 'sh', '-c', 'grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      const [cpus, mem] = r.stdout.trim().split('\n')
      expect(cpus).toBe('2')
      const kib = Number(/MemTotal:\s+(\d+) kB/.exec(mem ?? '')?.[1])
      expect(kib).toBeGreaterThan(200 * 1024)
      expect(kib).toBeLessThan(288 * 1024)
      const argvLine = cd!.qemuStartLine('size-test')
      expect(argvLine).toContain('"-smp","2"')
      expect(argvLine).toContain('"-m","288M"')
    })

    test('ctr run -d, ctr task exec (kill -TERM $$ → 143, output relayed), ctr task kill -s SIGKILL of the PID 1 sleep → STOPPED 137, delete', async () => {
      const id = 'exec-test'
      const started = await cd!.ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, id, 'sleep', '1000'])
      expect(started.stderr).toBe('')
      expect(started.code).toBe(0)
      try {
        expect((await cd!.ctr(['task', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`))
        const e = await cd!.ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo in-exec; kill -TERM $$'])
        expect(e.stdout).toBe('in-exec\n')
        expect(e.code).toBe(143)
        const k = await cd!.ctr(['task', 'kill', '-s', 'SIGKILL', id])
        expect(k.code).toBe(0)
        let ls = ''
        for (let i = 0; i < 100 && !/STOPPED/.test(ls); i++) {
          ls = (await cd!.ctr(['task', 'ls'])).stdout
          await new Promise((r) => setTimeout(r, 100))
        }
        expect(ls).toMatch(new RegExp(`${id}\\s+\\d+\\s+STOPPED`))
        const d = await cd!.ctr(['task', 'delete', id])
        expect(d.code).toBe(0)
        expect(d.stdout + d.stderr).toContain('137')
      } finally {
        await cd!.ctr(['task', 'delete', '-f', id])
        await cd!.ctr(['container', 'rm', id])
      }
      expect(shimQemus()).toEqual([])
    })
  },
)
