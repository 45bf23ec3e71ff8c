// Shared by the template-* scenarios: guest images as the runner built them, a temp template dir
// (never /run/vc), a logger that keeps every line, and teardown that leaves nothing behind.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino, type Logger } from 'pino'
import { guestImages } from '../../harness/boot-guest.ts'
import type { TemplateVmConfig } from '../../impl/runtime/factory/qemu-template.ts'
import { destroyTemplateDirSync } from '../../impl/runtime/factory/template-dir.ts'
import { onExitCleanup } from '../../impl/runtime/hypervisor/qemu/cleanup.ts'

export interface LogLine {
  level: number
  msg: string
  [k: string]: unknown
}

export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as LogLine) })
  return { logger, lines }
}

export async function templateVmConfig(): Promise<TemplateVmConfig> {
  const img = await guestImages()
  return { kernel: img.kernel, initrd: img.initramfs, rootfs: img.rootfs, memoryMiB: 512, smp: 2 }
}

/** A temp root with `template/` to be used as template_path; `dispose()` unmounts and removes all. */
export function tempTemplateRoot(): { root: string; templatePath: string; dispose(): void } {
  const root = mkdtempSync(join(tmpdir(), 'kataref-factory-'))
  const templatePath = join(root, 'template')
  const dispose = (): void => {
    destroyTemplateDirSync(templatePath)
    rmSync(root, { recursive: true, force: true })
  }
  const unregister = onExitCleanup(dispose)
  return {
    root,
    templatePath,
    dispose() {
      unregister()
      dispose()
    },
  }
}
