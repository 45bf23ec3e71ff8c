// bench/template: in one run, (a) a cold boot to agent-ready (grpc.Health/Check answered) and (b) a
// boot from a VM template to agent-ready (private mapping of the template memory, -incoming defer,
// migrate-incoming, cont). Prints both, the ratio (goal ≤ 0.1) and the template's save time. The
// template lives in a temp dir on a tmpfs (root) or a plain dir, removed at the end (also on Ctrl-C).
// Run: npm run bench -- template   (or: node --import tsx bench/template/template.bench.ts)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildGuestImages } from '../../images/guest/index.ts'
import { startSandboxVm } from '../../impl/runtime/factory/factory.ts'
import { createQemuTemplate, type TemplateVmConfig } from '../../impl/runtime/factory/qemu-template.ts'
import { destroyTemplateDirSync } from '../../impl/runtime/factory/template-dir.ts'
import { onExitCleanup } from '../../impl/runtime/hypervisor/qemu/cleanup.ts'
import { printTable } from '../report.ts'

export async function main(): Promise<void> {
  const img = await buildGuestImages()
  const cfg: TemplateVmConfig = { kernel: img.kernel, initrd: img.initramfs, rootfs: img.rootfs, memoryMiB: 512, smp: 2 }
  const root = mkdtempSync(join(tmpdir(), 'kataref-bench-template-'))
  const templatePath = join(root, 'template')
  const cleanup = (): void => {
    destroyTemplateDirSync(templatePath)
    rmSync(root, { recursive: true, force: true })
  }
  const unregister = onExitCleanup(cleanup)
  try {
    const cold = await startSandboxVm({ factory: { enableTemplate: false, templatePath }, vm: cfg })
    cold.agent.close()
    await cold.vm.stop()

    const t = await createQemuTemplate(cfg, { templatePath, mount: process.getuid?.() === 0 })
    const warm = await startSandboxVm({ factory: { enableTemplate: true, templatePath }, vm: cfg })
    if (!warm.fromTemplate) throw new Error(`expected a boot from the template: ${warm.directBootReason ?? ''}`)
    warm.agent.close()
    await warm.vm.stop()

    printTable('template', [
      ['cold boot to agent-ready', `${cold.readyMs.toFixed(0)} ms`, 'qemu spawn → Check answered'],
      ['boot from template to agent-ready', `${warm.readyMs.toFixed(0)} ms`, 'spawn, migrate-incoming, cont → Check answered'],
      ['ratio template / cold', (warm.readyMs / cold.readyMs).toFixed(3), 'goal ≤ 0.1, one run each'],
      ['template: pause + x-ignore-shared save', `${t.saveMs.toFixed(0)} ms`, `state file ${t.stateBytes} bytes`],
    ])
  } finally {
    unregister()
    cleanup()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
