// Sandbox VM start with the VM template factory (spec §7.1, Go `HandleFactory` after 730307f32c):
// - nothing unless `enable_template`;
// - exactly one fetch attempt (no template is ever created on the fly); on failure the warning
//   `load vm factory failed, will use direct boot` and a normal boot;
// - a template made with a different config (kernel, initrd, rootfs, cmdline, vCPUs, memory,
//   accelerator, QEMU binary) → normal boot, logged.
import type { Logger } from '../../types/logger.ts'
import { nullLogger } from '../../types/logger.ts'
import type { FactoryConfig } from '../../types/config/toml-config.ts'
import { DEFAULT_TEMPLATE_PATH } from '../../types/config/toml-config.ts'
import { KataAgent } from '../agent/kata-agent.ts'
import { QemuVm } from '../hypervisor/qemu/qemu.ts'
import { bootFromQemuTemplate, checkQemuTemplate, TemplateMismatchError, type TemplateVmConfig } from './qemu-template.ts'
import { templateExists, templatePaths } from './template-dir.ts'
import { TemplateNotFoundError } from './qemu-template.ts'
import { startVmWithAgent } from '../sandbox/vm-with-agent.ts'

export const LOAD_FACTORY_FAILED = 'load vm factory failed, will use direct boot'

/** A loaded template factory (the template was found on disk). */
export interface TemplateFactory {
  templatePath: string
}

/** `HandleFactory`: one fetch-only attempt; undefined (and a warning) when there is no template. */
export function loadFactory(cfg: Pick<FactoryConfig, 'enableTemplate' | 'templatePath'>, logger: Logger = nullLogger): TemplateFactory | undefined {
  if (!cfg.enableTemplate) return undefined
  const templatePath = cfg.templatePath || DEFAULT_TEMPLATE_PATH
  if (!templateExists(templatePath)) {
    logger.warn({ err: new TemplateNotFoundError(templatePaths(templatePath).dir).message, templatePath }, LOAD_FACTORY_FAILED)
    return undefined
  }
  return { templatePath }
}

export interface SandboxVm {
  vm: QemuVm
  agent: KataAgent
  fromTemplate: boolean
  /** Spawn → agent answered Check. */
  readyMs: number
  /** Why a template was not used (absent when it was, or when templates are off). */
  directBootReason?: string
}

export interface StartSandboxVmOptions {
  factory: Pick<FactoryConfig, 'enableTemplate' | 'templatePath'>
  vm: TemplateVmConfig
  runDir?: string
  agentDeadlineMs?: number
  logger?: Logger
}

export type BootPlan = { kind: 'template'; templatePath: string } | { kind: 'direct'; reason?: string }

/** Decide how a sandbox VM boots (no VM started): a matching template, else direct (with the reason, logged). */
export function planSandboxBoot(factoryCfg: Pick<FactoryConfig, 'enableTemplate' | 'templatePath'>, vm: TemplateVmConfig, logger: Logger = nullLogger): BootPlan {
  const factory = loadFactory(factoryCfg, logger)
  if (!factory) return factoryCfg.enableTemplate ? { kind: 'direct', reason: LOAD_FACTORY_FAILED } : { kind: 'direct' }
  try {
    checkQemuTemplate(factory.templatePath, vm)
    return { kind: 'template', templatePath: factory.templatePath }
  } catch (e) {
    if (!(e instanceof TemplateMismatchError)) throw e
    logger.warn({ err: e.message, fields: e.fields }, TEMPLATE_MISMATCH)
    return { kind: 'direct', reason: e.message }
  }
}

export const TEMPLATE_MISMATCH = 'VM template does not match this sandbox config, will use direct boot'

/** Start a sandbox VM: from the template when there is a matching one, else a normal boot. */
export async function startSandboxVm(opts: StartSandboxVmOptions): Promise<SandboxVm> {
  const log = (opts.logger ?? nullLogger).child({ component: 'factory' })
  const plan = planSandboxBoot(opts.factory, opts.vm, log)
  if (plan.kind === 'template') {
    const clone = await bootFromQemuTemplate(opts.vm, {
      templatePath: plan.templatePath,
      logger: log,
      ...(opts.runDir ? { runDir: opts.runDir } : {}),
      ...(opts.agentDeadlineMs ? { agentDeadlineMs: opts.agentDeadlineMs } : {}),
    })
    return { vm: clone.vm, agent: clone.agent, fromTemplate: true, readyMs: clone.readyMs }
  }
  const directBootReason = plan.reason
  const { vm, agent, readyMs } = await startVmWithAgent(
    {
      kernel: opts.vm.kernel,
      ...(opts.vm.initrd ? { initrd: opts.vm.initrd } : {}),
      ...(opts.vm.rootfs ? { rootfs: opts.vm.rootfs } : {}),
      ...(opts.vm.append ? { append: opts.vm.append } : {}),
      ...(opts.vm.smp ? { smp: opts.vm.smp } : {}),
      ...(opts.vm.memoryMiB ? { memoryMiB: opts.vm.memoryMiB } : {}),
      ...(opts.vm.accel ? { accel: opts.vm.accel } : {}),
      ...(opts.vm.binary ? { binary: opts.vm.binary } : {}),
      ...(opts.runDir ? { runDir: opts.runDir } : {}),
    },
    { logger: log, ...(opts.agentDeadlineMs ? { agentDeadlineMs: opts.agentDeadlineMs } : {}) },
  )
  return { vm, agent, fromTemplate: false, readyMs, ...(directBootReason ? { directBootReason } : {}) }
}
