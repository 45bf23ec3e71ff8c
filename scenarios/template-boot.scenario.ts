// VM templating on QEMU for real (spec §7.1, rows 34–35 on QEMU): `factory init` boots a template VM
// whose RAM lives in `<template>/memory` on a tmpfs of memory+8 MiB, pauses it and saves its device
// state with `x-ignore-shared` into `<template>/state`. A sandbox with `enable_template = true` then
// starts from it — private copy-on-write mapping of the same memory file, `-incoming defer`,
// `migrate-incoming`, `cont` — and its agent, finding a new host socket on its virtio-serial port,
// answers Check. Two clones share the template and do not see each other's writes.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { scenario, test, expect } from '../harness/scenario.ts'
import { HealthCheckResponse_ServingStatus } from '../impl/gen/health_pb.ts'
import { startSandboxVm, type SandboxVm } from '../impl/runtime/factory/factory.ts'
import { createQemuTemplate } from '../impl/runtime/factory/qemu-template.ts'
import { isMountPoint } from '../impl/runtime/factory/template-dir.ts'
import { DebugConsole } from '../impl/runtime/hypervisor/qemu/debug-console.ts'
import { PACKAGE_ROOT } from '../harness/paths.ts'
import { recordingLogger, templateVmConfig, tempTemplateRoot } from './_support/factory.ts'

const tmp = tempTemplateRoot()
const sandboxes: SandboxVm[] = []
const consoles: DebugConsole[] = []
afterAll(async () => {
  for (const c of consoles) c.close()
  for (const s of sandboxes) {
    s.agent.close()
    await s.vm.stop()
  }
  tmp.dispose()
  expect(existsSync(tmp.root)).toBe(false)
})

const kataref = (...args: string[]): { code: number; out: string } => {
  try {
    return { code: 0, out: execFileSync(process.execPath, [join(PACKAGE_ROOT, 'bin/kataref.mjs'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) }
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string }
    return { code: x.status, out: x.stdout + x.stderr }
  }
}

scenario(
  {
    name: 'template-boot',
    upstream: 'kata-containers VM templating: `kata-runtime factory init`, factory/template (BootToBeTemplate / BootFromTemplate, x-ignore-shared save), HandleFactory 730307f32c; k8s-vm-templating.bats',
    requires: ['qemu', 'root'],
  },
  () => {
    test('factory init: tmpfs of memory+8 MiB, memory file of exactly 512 MiB, device state saved with x-ignore-shared', async ({ annotate }) => {
      const cfg = await templateVmConfig()
      const t = await createQemuTemplate(cfg, { templatePath: tmp.templatePath })
      expect(t.mounted).toBe(true)
      expect(isMountPoint(tmp.templatePath)).toBe(true)
      const mount = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === tmp.templatePath)!
      expect(mount).toMatch(/^tmpfs \S+ tmpfs /)
      expect(mount).toContain('nosuid')
      expect(mount).toContain('nodev')
      expect(mount).toContain(`size=${(512 + 8) * 1024}k`)
      expect(statSync(join(tmp.templatePath, 'memory')).size).toBe(536870912)
      // x-ignore-shared: RAM is not in the state file (it is the memory file), so the state is small.
      expect(t.stateBytes).toBeGreaterThan(0)
      expect(t.stateBytes).toBeLessThan(8 * 1024 * 1024)
      await annotate(`template: boot to agent-ready ${t.bootMs.toFixed(0)} ms, pause+save ${t.saveMs.toFixed(0)} ms, state ${t.stateBytes} bytes`)
      const status = kataref('factory', 'status', '--template-path', tmp.templatePath)
      expect(status.code).toBe(0)
      expect(status.out).toContain(`VM template in ${tmp.templatePath} (tmpfs)`)
      expect(status.out).toContain('memory: 536870912 bytes')
    })

    test('a sandbox with enable_template = true starts from the template, reaches agent-ready and answers Check', async ({ annotate }) => {
      const cfg = await templateVmConfig()
      const { logger, lines } = recordingLogger()
      const sb = await startSandboxVm({ factory: { enableTemplate: true, templatePath: tmp.templatePath }, vm: cfg, logger })
      sandboxes.push(sb)
      expect(sb.fromTemplate).toBe(true)
      expect(sb.vm.args.join(' ')).toContain(`mem-path=${tmp.templatePath}/memory,share=off`)
      expect(sb.vm.args).toContain('-incoming')
      const res = await sb.agent.health.check({}, { timeoutMs: 10_000 })
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING)
      expect(lines.some((l) => l.msg === 'load vm factory failed, will use direct boot')).toBe(false)
      await annotate(`sandbox from template: spawn → agent-ready ${sb.readyMs.toFixed(0)} ms`)

      // Witness: the clone did not boot a kernel (its console has no boot lines), and the guest's agent
      // noticed the new host on its port; the debug shell answers on the clone's own socket too.
      const console = sb.vm.consoleTail(200)
      expect(console).not.toMatch(/Linux version|Run \/init/)
      expect(console).toMatch(/"msg":"host connected"/)
      const dbg = await DebugConsole.connect(sb.vm.debugSocketPath, { timeoutMs: 30_000 })
      consoles.push(dbg)
      const up = await dbg.run('cat /proc/uptime; pidof node')
      expect(up.exitCode).toBe(0)
      // The clone's clock would be the template's (behind by the template's age); the runtime reseeded the
      // RNG and set the time through the agent (ReseedRandomDev, SetGuestDateTime), as Go's factory does.
      const guestNow = Number((await dbg.run('date +%s')).stdout.trim())
      const offset = guestNow - Date.now() / 1000
      await annotate(`clone guest clock − host clock after SetGuestDateTime: ${offset.toFixed(1)} s (template saved ${((Date.now() - statSync(join(tmp.templatePath, 'state')).mtimeMs) / 1000).toFixed(1)} s ago)`)
      expect(Math.abs(offset)).toBeLessThan(2)
      const log = sb.vm.consoleTail(200)
      expect(log).toMatch(/"msg":"ReseedRandomDev"/)
      expect(log).toMatch(/"msg":"SetGuestDateTime"/)
    })

    test('two clones share the template memory copy-on-write: a hostname set in one is not seen by the other', async () => {
      const cfg = await templateVmConfig()
      const second = await startSandboxVm({ factory: { enableTemplate: true, templatePath: tmp.templatePath }, vm: cfg })
      sandboxes.push(second)
      expect(second.fromTemplate).toBe(true)
      const first = sandboxes[0]!
      await first.agent.agent.createSandbox({ sandboxId: 'sb-a', hostname: 'clone-a' }, { timeoutMs: 10_000 })
      await second.agent.agent.createSandbox({ sandboxId: 'sb-b', hostname: 'clone-b' }, { timeoutMs: 10_000 })
      const d1 = consoles[0]!
      const d2 = await DebugConsole.connect(second.vm.debugSocketPath, { timeoutMs: 30_000 })
      consoles.push(d2)
      expect((await d1.run('hostname')).stdout.trim()).toBe('clone-a')
      expect((await d2.run('hostname')).stdout.trim()).toBe('clone-b')
    })

    test('factory destroy: tmpfs unmounted, template dir removed', async () => {
      for (const c of consoles.splice(0)) c.close()
      for (const s of sandboxes.splice(0)) {
        s.agent.close()
        await s.vm.stop()
      }
      const r = kataref('factory', 'destroy', '--template-path', tmp.templatePath)
      expect(r.code).toBe(0)
      expect(isMountPoint(tmp.templatePath)).toBe(false)
      expect(existsSync(tmp.templatePath)).toBe(false)
      expect(kataref('factory', 'status', '--template-path', tmp.templatePath).out).toContain(`no VM template in ${tmp.templatePath}`)
    })
  },
)
