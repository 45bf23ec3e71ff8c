// `kataref factory init|status|destroy` (Go `kata-runtime factory …`, runtime-rs `kata-ctl factory …`):
// make the VM template from the guest images, show it, or remove it (tmpfs unmounted, dir removed).
import { parseArgs } from 'node:util'
import { loadConfiguration } from '../../types/config/load.ts'
import { DEFAULT_TEMPLATE_PATH } from '../../types/config/toml-config.ts'
import { createLogger } from '../../types/logger.ts'
import { createQemuTemplate, type QemuTemplateMeta, type TemplateVmConfig } from './qemu-template.ts'
import { destroyTemplateDirSync, fileSize, isMountPoint, readTemplateMeta, templateExists, templatePaths } from './template-dir.ts'
import { existsSync } from 'node:fs'

export const FACTORY_USAGE = `usage: kataref factory <init|status|destroy> [options]

  init      boot a template VM from the guest images, pause it and save it (x-ignore-shared)
            into the template dir: tmpfs of memory+8 MiB, files 'memory' and 'state'
  status    show the template (files, sizes, the config it was made with)
  destroy   unmount the template tmpfs and remove the template dir

options:
  --template-path DIR   template dir (default: the config's [hypervisor.<name>.factory] template_path,
                        else ${DEFAULT_TEMPLATE_PATH})
  --config FILE         configuration.toml to read template_path from
  --memory MIB          template VM memory (init; default 512)
  --smp N               template VM vCPUs (init; default 2)
  --no-mount            do not mount a tmpfs (init; the dir must be on a filesystem with room)`

function templatePathFrom(values: { 'template-path'?: string | undefined; config?: string | undefined }): string {
  if (values['template-path']) return values['template-path']
  if (values.config) {
    const { config } = loadConfiguration({ path: values.config })
    const hv = config.hypervisor[config.runtime.hypervisorName] ?? Object.values(config.hypervisor)[0]
    if (hv?.factory.templatePath) return hv.factory.templatePath
  }
  return DEFAULT_TEMPLATE_PATH
}

/** Returns the exit code; writes to stdout/stderr. */
export async function factoryCommand(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'template-path': { type: 'string' },
        config: { type: 'string' },
        memory: { type: 'string' },
        smp: { type: 'string' },
        'no-mount': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (e) {
    process.stderr.write(`kataref factory: ${(e as Error).message}\n\n${FACTORY_USAGE}\n`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(FACTORY_USAGE + '\n')
    return 0
  }
  const [sub, ...extra] = positionals
  if (!sub || extra.length || !['init', 'status', 'destroy'].includes(sub)) {
    process.stderr.write(`kataref factory: ${sub ? (extra.length ? `unexpected argument '${extra[0]}'` : `unknown subcommand '${sub}'`) : 'which subcommand?'}\n\n${FACTORY_USAGE}\n`)
    return 2
  }
  const dir = templatePathFrom(values)
  const paths = templatePaths(dir)

  if (sub === 'status') {
    if (!templateExists(dir)) {
      process.stdout.write(`no VM template in ${paths.dir}\n`)
      return 1
    }
    const meta = readTemplateMeta<QemuTemplateMeta>(paths)
    process.stdout.write(
      [
        `VM template in ${paths.dir}${isMountPoint(paths.dir) ? ' (tmpfs)' : ''}`,
        `  memory: ${fileSize(paths.memory)} bytes`,
        `  state:  ${fileSize(paths.state)} bytes`,
        ...(meta
          ? [
              `  made:   ${meta.createdAt}`,
              `  vm:     ${meta.config.smp} vCPU, ${meta.config.memoryMiB} MiB, ${meta.config.accel}, ${meta.config.binary}`,
              `  kernel: ${meta.config.kernel.path}`,
              ...(meta.config.initrd ? [`  initrd: ${meta.config.initrd.path}`] : []),
              ...(meta.config.rootfs ? [`  rootfs: ${meta.config.rootfs.path}`] : []),
            ]
          : ['  (no template.json: made by another tool)']),
      ].join('\n') + '\n',
    )
    return 0
  }

  if (sub === 'destroy') {
    if (!existsSync(paths.dir)) {
      process.stdout.write(`no VM template dir ${paths.dir}\n`)
      return 0
    }
    destroyTemplateDirSync(paths.dir)
    process.stdout.write(`removed VM template ${paths.dir}\n`)
    return 0
  }

  // init
  const memoryMiB = values.memory ? Number(values.memory) : 512
  const smp = values.smp ? Number(values.smp) : 2
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64) {
    process.stderr.write(`kataref factory: --memory must be an integer >= 64 (MiB), got '${values.memory}'\n`)
    return 2
  }
  if (!Number.isInteger(smp) || smp < 1) {
    process.stderr.write(`kataref factory: --smp must be a positive integer, got '${values.smp}'\n`)
    return 2
  }
  const { buildGuestImages } = await import('../../../images/guest/index.ts')
  const img = await buildGuestImages()
  const cfg: TemplateVmConfig = { kernel: img.kernel, initrd: img.initramfs, rootfs: img.rootfs, memoryMiB, smp }
  const log = createLogger({ component: 'factory', level: (process.env.KATAREF_LOG_LEVEL as 'info' | undefined) ?? 'warn' })
  const t = await createQemuTemplate(cfg, { templatePath: dir, mount: !values['no-mount'], logger: log })
  process.stdout.write(
    `VM template created in ${t.paths.dir}${t.mounted ? ' (tmpfs)' : ''}: boot to agent-ready ${t.bootMs.toFixed(0)} ms, save ${t.saveMs.toFixed(0)} ms, state ${t.stateBytes} bytes\n`,
  )
  return 0
}
