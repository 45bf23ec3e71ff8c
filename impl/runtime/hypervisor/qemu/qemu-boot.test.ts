// Boots a real guest (TCG here) from the images built by images/guest and observes it through
// the debug console. Slow (tens of seconds under TCG); prints the measured timings on stderr.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildGuestImages, BARE_MARKER, type GuestImages } from '../../../../images/guest/index.ts'
import { DebugConsole } from './debug-console.ts'
import { QemuVm } from './qemu.ts'
import { processAlive } from '../../../types/process-alive.ts'

const STAND_IN_AGENT = `// Stand-in agent for the boot test: proves the bundle runs and koffi loads in the guest.
import koffi from 'koffi'
const i = process.argv.indexOf('--channel')
console.log(JSON.stringify({ msg: 'kataref stand-in agent started', channel: process.argv[i + 1], koffi: koffi.version, node: process.version }))
setInterval(() => {}, 1 << 30)
`

const timings: Record<string, number> = {}
const report = (): void => {
  process.stderr.write(`[qemu-boot] timings (ms): ${JSON.stringify(timings)}\n`)
}


async function waitFor<T>(what: string, ms: number, fn: () => T | undefined): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('guest boot under QEMU', () => {
  let images: GuestImages
  let agentDir: string

  beforeAll(async () => {
    agentDir = mkdtempSync(join(tmpdir(), 'kataref-standin-'))
    writeFileSync(join(agentDir, 'main.ts'), STAND_IN_AGENT)
    const entry = process.env.KATAREF_BOOT_TEST_AGENT === 'real' ? undefined : join(agentDir, 'main.ts')
    let t = Date.now()
    images = await buildGuestImages({ agentEntry: entry })
    timings.buildMs = Date.now() - t
    timings.kernelStepMs = images.timings.kernelMs
    process.stderr.write(`[qemu-boot] kernel ${images.kernel} (${images.kernelFormat})\n`)
    t = Date.now()
    const again = await buildGuestImages({ agentEntry: entry })
    timings.cachedRebuildMs = Date.now() - t
    expect(again.cached).toEqual({ kernel: true, initramfs: true, bareInitramfs: true, rootfs: true })
    expect(again.rootfs).toBe(images.rootfs)
  }, 600_000)

  afterAll(() => {
    rmSync(agentDir, { recursive: true, force: true })
    report()
  })

  it('boots to the debug shell, runs node, and stops without leftovers', async () => {
    for (const p of [images.kernel, images.initramfs, images.rootfs, images.bareInitramfs]) expect(existsSync(p)).toBe(true)
    const vm = new QemuVm({ kernel: images.kernel, initrd: images.initramfs, rootfs: images.rootfs })
    const t0 = Date.now()
    let dc: DebugConsole | undefined
    try {
      await vm.start()
      timings.qemuSocketsMs = Date.now() - t0
      expect(processAlive(vm.pid)).toBe(true)
      dc = await DebugConsole.connect(vm.debugSocketPath, { timeoutMs: 180_000, consoleTail: () => vm.consoleTail(40) })
      timings.debugShellMs = Date.now() - t0

      expect((await dc.check('uname -r')).trim()).toBe(images.kernelVersion)
      expect(await dc.check('cat /proc/filesystems')).toMatch(/\berofs\b/)
      expect((await dc.run('test -f /sys/fs/cgroup/cgroup.controllers')).exitCode).toBe(0)
      expect(await dc.check('grep -c " /sys/fs/cgroup cgroup2 " /proc/mounts')).toBe('1\n')
      const vports = (await dc.check('ls /dev/vport*')).trim().split('\n')
      expect(vports.length).toBe(2)
      const names = (await dc.check('cat /sys/class/virtio-ports/vport*/name')).trim().split('\n').sort()
      expect(names).toEqual(['kataref.agent.0', 'kataref.debug.0'])
      expect(await dc.check('grep " / " /proc/mounts')).toMatch(/^\/dev\/vda \/ erofs ro/)
      expect((await dc.run('touch /usr/x')).exitCode).not.toBe(0)
      await dc.check('touch /tmp/x /run/x /var/x')
      expect((await dc.check('cat /proc/1/comm')).trim()).toBe('init')
      expect(await dc.check('veritysetup --version')).toMatch(/^veritysetup \d/)
      expect(await dc.check('grep -c . /proc/modules')).not.toBe('0\n')
      expect(await dc.check('grep -E "^(dm_verity|overlay|9pnet_virtio) " /proc/modules | wc -l')).toBe('3\n')

      // The witness survives the host going away and coming back.
      dc.close()
      dc = await DebugConsole.connect(vm.debugSocketPath, { timeoutMs: 60_000, consoleTail: () => vm.consoleTail(40) })
      expect(await dc.check('echo again')).toBe('again\n')

      const tn = Date.now()
      expect((await dc.check('node -e "console.log(process.version)"', { timeoutMs: 120_000 })).trim()).toBe(process.version)
      timings.nodeInGuestMs = Date.now() - tn
      timings.toNodeMs = Date.now() - t0

      if (images.hasAgent && process.env.KATAREF_BOOT_TEST_AGENT !== 'real') {
        const line = await waitFor('the stand-in agent on the console', 120_000, () =>
          vm.consoleTail(200).split('\n').find((l) => l.includes('kataref stand-in agent started')),
        )
        expect(line).toContain('"channel":"vport:kataref.agent.0"')
        expect(line).toContain('"koffi":"')
        timings.agentOnConsoleMs = Date.now() - t0
      }
      timings.guestUptimeS = Number((await dc.check('cut -d" " -f1 /proc/uptime')).trim())
    } catch (e) {
      process.stderr.write(`--- console ---\n${vm.consoleTail(80)}\n--- qemu stderr ---\n${vm.stderr()}\n`)
      throw e
    } finally {
      dc?.close()
      // A runtime QMP client holding qmp.sock must not delay stop(): the launcher quits on its own monitor.
      const holder = existsSync(vm.qmpSocketPath) ? connect(vm.qmpSocketPath).on('error', () => {}) : undefined
      const ts = Date.now()
      await vm.stop()
      timings.stopMs = Date.now() - ts
      holder?.destroy()
    }
    expect(timings.stopMs).toBeLessThan(1900)
    expect(processAlive(vm.pid)).toBe(false)
    expect(existsSync(vm.runDir)).toBe(false)
    expect((await vm.exited).exitCode).toBe(0) // QMP quit
    await vm.stop() // idempotent
  }, 600_000)

  it('kill() ends qemu at once; stop() then cleans up', async () => {
    const vm = new QemuVm({ kernel: images.kernel, initrd: images.bareInitramfs })
    await vm.start()
    vm.kill()
    expect((await vm.exited).signal).toBe('SIGKILL')
    expect(existsSync(vm.runDir)).toBe(true)
    await vm.stop()
    expect(existsSync(vm.runDir)).toBe(false)
    expect(processAlive(vm.pid)).toBe(false)
  }, 60_000)

  it('boots the bare initramfs to its marker and powers off', async () => {
    const vm = new QemuVm({ kernel: images.kernel, initrd: images.bareInitramfs })
    const t0 = Date.now()
    try {
      await vm.start()
      const exit = await Promise.race([vm.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 180_000))])
      expect(exit, `bare guest did not power off\n${vm.consoleTail(40)}`).toBeDefined()
      timings.bareBootToPoweroffMs = Date.now() - t0
      const line = vm.consoleTail(40).split('\n').find((l) => l.includes(BARE_MARKER))
      expect(line, vm.consoleTail(40)).toBeDefined()
      timings.bareGuestUptimeS = Number(/uptime=([\d.]+)/.exec(line!)?.[1])
    } finally {
      await vm.stop()
    }
    expect(existsSync(vm.runDir)).toBe(false)
  }, 300_000)
})
