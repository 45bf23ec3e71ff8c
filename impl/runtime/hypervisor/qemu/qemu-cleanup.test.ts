// Ctrl-C (SIGINT) / SIGTERM on a process that owns VMs must leave no qemu process, socket or run dir.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildGuestImages, type GuestImages } from '../../../../images/guest/index.ts'
import { onExitCleanup, pendingCleanups } from './cleanup.ts'
import { QemuVm } from './qemu.ts'
import { processAlive } from '../../../types/process-alive.ts'

const here = new URL('.', import.meta.url).pathname


async function until(ms: number, fn: () => boolean): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return fn()
}

describe('exit cleanup', () => {
  let images: GuestImages
  let dir: string
  beforeAll(async () => {
    images = await buildGuestImages({ agentEntry: null, progress: false })
    dir = mkdtempSync(join(tmpdir(), 'kataref-cleanup-'))
  }, 600_000)
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('unregistering a hook removes it', () => {
    const before = pendingCleanups()
    const off = onExitCleanup(() => {})
    expect(pendingCleanups()).toBe(before + 1)
    off()
    expect(pendingCleanups()).toBe(before)
  })

  it('stop() on a VM that was never started removes its temp run dir', async () => {
    const vm = new QemuVm({ kernel: images.kernel, initrd: images.bareInitramfs })
    expect(existsSync(vm.runDir)).toBe(true)
    await vm.stop()
    expect(existsSync(vm.runDir)).toBe(false)
  })

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    it(`${sig} to the owning process kills qemu${sig === 'SIGKILL' ? ' (parent-death signal)' : ' and removes the run dir'}`, async () => {
      const script = join(dir, `owner-${sig}.mts`)
      writeFileSync(
        script,
        `import { QemuVm } from ${JSON.stringify(join(here, 'qemu.ts'))}\n` +
          `const vm = new QemuVm({ kernel: ${JSON.stringify(images.kernel)}, initrd: ${JSON.stringify(images.initramfs)}, rootfs: ${JSON.stringify(images.rootfs)} })\n` +
          `await vm.start()\nconsole.log(JSON.stringify({ pid: vm.pid, runDir: vm.runDir }))\nsetInterval(() => {}, 1000)\n`,
      )
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] })
      const info = await new Promise<{ pid: number; runDir: string }>((res, rej) => {
        let out = ''
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          const line = out.split('\n').find((l) => l.startsWith('{'))
          if (line) res(JSON.parse(line) as { pid: number; runDir: string })
        })
        child.on('exit', (code) => rej(new Error(`owner exited early (${code})`)))
      })
      expect(processAlive(info.pid)).toBe(true)
      expect(existsSync(join(info.runDir, 'qmp.sock'))).toBe(true)
      const exited = new Promise<string | null>((r) => child.on('exit', (_c, s) => r(s)))
      child.kill(sig)
      expect(await exited).toBe(sig)
      expect(await until(5000, () => !processAlive(info.pid))).toBe(true)
      // SIGKILL runs no hook: qemu still dies (setpriv --pdeathsig), the temp dir stays behind.
      if (sig === 'SIGKILL') rmSync(info.runDir, { recursive: true, force: true })
      expect(existsSync(info.runDir)).toBe(false)
    }, 120_000)
  }
})
