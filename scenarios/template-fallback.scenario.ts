// HandleFactory after 730307f32c (spec §7.1, row 34 on QEMU): with `enable_template = true` but no
// template on disk, one fetch-only attempt fails, the warning `load vm factory failed, will use direct
// boot` is logged once, the sandbox boots normally and no template is created on the fly. A template
// made with a different config is not used either (normal boot, logged).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { scenario, test, expect } from '../harness/scenario.ts'
import { HealthCheckResponse_ServingStatus } from '../impl/gen/health_pb.ts'
import { parseConfiguration } from '../impl/types/config/load.ts'
import { LOAD_FACTORY_FAILED, planSandboxBoot, startSandboxVm, TEMPLATE_MISMATCH, type SandboxVm } from '../impl/runtime/factory/factory.ts'
import { normalizeTemplateConfig, type QemuTemplateMeta } from '../impl/runtime/factory/qemu-template.ts'
import { recordingLogger, templateVmConfig, tempTemplateRoot } from './_support/factory.ts'

const tmp = tempTemplateRoot()
const sandboxes: SandboxVm[] = []
afterAll(async () => {
  for (const s of sandboxes) {
    s.agent.close()
    await s.vm.stop()
  }
  tmp.dispose()
})

function factoryFromToml(templatePath: string) {
  const text = `[hypervisor.qemu]\ndefault_memory = 512\n[hypervisor.qemu.factory]\nenable_template = true\ntemplate_path = "${templatePath}"\n`
  const { config } = parseConfiguration(text, 'configuration.toml', { cpus: 2, memoryMiB: 4096 })
  return config.hypervisor.qemu!.factory
}

scenario(
  {
    name: 'template-fallback',
    upstream: 'kata-containers HandleFactory: no fall-back to creating a template, plain boot instead (730307f32c; katautils/create.go)',
    requires: ['qemu'],
  },
  () => {
    test('enable_template = true, no template: one warning, a normal boot that answers Check, no template made on the fly', async () => {
      const cfg = await templateVmConfig()
      const factory = factoryFromToml(tmp.templatePath)
      expect(factory).toEqual({ enableTemplate: true, templatePath: tmp.templatePath })
      const { logger, lines } = recordingLogger()
      const sb = await startSandboxVm({ factory, vm: cfg, logger })
      sandboxes.push(sb)
      expect(sb.fromTemplate).toBe(false)
      expect(sb.directBootReason).toBe(LOAD_FACTORY_FAILED)
      const warnings = lines.filter((l) => l.msg === LOAD_FACTORY_FAILED)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.level).toBe(40)
      expect(String(warnings[0]!.err)).toContain(`no VM template in ${tmp.templatePath}`)
      // A normal boot: no file-backed memory, no -incoming; the guest booted a kernel.
      expect(sb.vm.args.join(' ')).not.toContain('memory-backend-file')
      expect(sb.vm.args).not.toContain('-incoming')
      expect((await sb.agent.health.check({}, { timeoutMs: 10_000 })).status).toBe(HealthCheckResponse_ServingStatus.SERVING)
      // Nothing was created on the fly.
      expect(existsSync(tmp.templatePath)).toBe(false)
    })

    test('a template made with another config (other cmdline) is not used, nor one smaller than the sandbox: direct boot, logged', async () => {
      const cfg = await templateVmConfig()
      // A template dir as factory init would leave it, but recorded for a 256 MiB VM with another cmdline.
      mkdirSync(tmp.templatePath, { recursive: true, mode: 0o700 })
      writeFileSync(join(tmp.templatePath, 'memory'), '')
      writeFileSync(join(tmp.templatePath, 'state'), '')
      const other = normalizeTemplateConfig({ ...cfg, memoryMiB: 256, append: 'console=ttyS0 other' })
      const meta: QemuTemplateMeta = { kataref: 1, hypervisor: 'qemu', createdAt: new Date().toISOString(), config: other }
      writeFileSync(join(tmp.templatePath, 'template.json'), JSON.stringify(meta))
      const { logger, lines } = recordingLogger()
      const plan = planSandboxBoot(factoryFromToml(tmp.templatePath), cfg, logger)
      expect(plan.kind).toBe('direct')
      expect(plan.kind === 'direct' ? plan.reason : '').toMatch(/made with a different config \(append\)$/)
      expect(lines.filter((l) => l.msg === TEMPLATE_MISMATCH)).toHaveLength(1)
      // Same cmdline, but 256 MiB < the sandbox's 512 MiB: Go would hot-add memory; the template VM has no headroom here.
      writeFileSync(join(tmp.templatePath, 'template.json'), JSON.stringify({ ...meta, config: normalizeTemplateConfig({ ...cfg, memoryMiB: 256 }) }))
      const small = planSandboxBoot(factoryFromToml(tmp.templatePath), cfg, logger)
      expect(small.kind === 'direct' ? small.reason : '').toMatch(/smaller than this sandbox needs and cannot grow \(memory 512 MiB > template 256 MiB\)/)
      expect(lines.some((l) => l.msg === LOAD_FACTORY_FAILED)).toBe(false)
      // The template is not rebuilt nor touched.
      expect(existsSync(join(tmp.templatePath, 'template.json'))).toBe(true)
      // The same config as the first sandbox, from the guest that already runs: it booted directly.
      expect(sandboxes[0]!.fromTemplate).toBe(false)
    })
  },
)
