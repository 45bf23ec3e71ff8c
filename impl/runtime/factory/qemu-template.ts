// VM templates on QEMU (spec §7.1; Go virtcontainers factory/template + qemu.go, restated):
// - making one: a VM booted with its RAM in `<dir>/memory` (memory-backend-file, share=on); once the
//   agent answered, the agent connection is closed, the guest settles, then QMP `stop`, capability
//   `x-ignore-shared` (shared RAM is not copied: it is already in the file), `migrate` to
//   `exec:cat > <dir>/state`, quit.
// - a VM from it: the same command line except RAM mapped privately from the same file (share=off,
//   copy-on-write), `-incoming defer`, `x-ignore-shared`, `migrate-incoming exec:cat <dir>/state`,
//   then `cont`. The guest's agent finds its virtio-serial host side is a new socket and serves it.
import { randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { KataAgent } from '../agent/kata-agent.ts'
import { unixDialer } from '../agent/dialer.ts'
import { kernelCmdline, type Accel } from '../hypervisor/qemu/cmdline.ts'
import { defaultAccel, QemuVm } from '../hypervisor/qemu/qemu.ts'
import { connectQmpSocket } from '../hypervisor/qemu/qmp/qmp-socket.ts'
import { shellQuote } from '../hypervisor/qemu/debug-console.ts'
import type { QmpClient } from '../hypervisor/qemu/qmp/qmp-client.ts'
import { Code, DeadlineError, KatarefError, errorMessage } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { destroyTemplateDirSync, prepareTemplateDir, readTemplateMeta, templateExists, templatePaths, writeTemplateMeta, type TemplatePaths } from './template-dir.ts'

export interface TemplateVmConfig {
  kernel: string
  initrd?: string
  /** Read-only rootfs image (must be read-only: template and clones share it). */
  rootfs?: string
  append?: string
  smp?: number
  memoryMiB?: number
  accel?: Accel
  /** qemu-system-x86_64 path (default env KATAREF_QEMU or from PATH). */
  binary?: string
}

/** A file's identity: path, size and inode (not mtime: the guest image cache touches files it reuses). */
interface FileId {
  path: string
  size: number
  ino: number
}

/** What must be equal between the template and a VM booted from it (per-VM paths excluded). */
export interface NormalizedTemplateConfig {
  kernel: FileId
  initrd?: FileId
  rootfs?: FileId
  append: string
  smp: number
  memoryMiB: number
  accel: Accel
  binary: string
}

export interface QemuTemplateMeta {
  kataref: 1
  hypervisor: 'qemu'
  createdAt: string
  config: NormalizedTemplateConfig
}

function fileId(p: string): FileId {
  const path = resolve(p)
  const st = statSync(path)
  return { path, size: st.size, ino: st.ino }
}

export function normalizeTemplateConfig(c: TemplateVmConfig): NormalizedTemplateConfig {
  const n: NormalizedTemplateConfig = {
    kernel: fileId(c.kernel),
    append: c.append ?? kernelCmdline(),
    smp: c.smp ?? 2,
    memoryMiB: c.memoryMiB ?? 512,
    accel: c.accel ?? defaultAccel(),
    binary: c.binary ?? process.env.KATAREF_QEMU ?? 'qemu-system-x86_64',
  }
  if (c.initrd) n.initrd = fileId(c.initrd)
  if (c.rootfs) n.rootfs = fileId(c.rootfs)
  return n
}

/**
 * Differences between the template's config and the requested one (empty = match). As Go's factory
 * blanks vCPUs and memory before comparing, `smp` and `memoryMiB` are not part of the match: a VM from
 * the template has the template's size (see `sizeShortfall`).
 */
export function configMismatch(template: NormalizedTemplateConfig, want: NormalizedTemplateConfig): string[] {
  const a = template as unknown as Record<string, unknown>
  const b = want as unknown as Record<string, unknown>
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  keys.delete('smp')
  keys.delete('memoryMiB')
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort()
}

/**
 * Where the request exceeds the template's size. Go then hot-adds vCPUs / memory to the clone; the
 * template VM here has no hot-plug headroom (no maxcpus, slots or maxmem), so kataref boots directly.
 */
export function sizeShortfall(template: NormalizedTemplateConfig, want: NormalizedTemplateConfig): string[] {
  const out: string[] = []
  if (want.smp > template.smp) out.push(`vCPUs ${want.smp} > template ${template.smp}`)
  if (want.memoryMiB > template.memoryMiB) out.push(`memory ${want.memoryMiB} MiB > template ${template.memoryMiB} MiB`)
  return out
}

function vmOptions(n: NormalizedTemplateConfig) {
  return {
    kernel: n.kernel.path,
    ...(n.initrd ? { initrd: n.initrd.path } : {}),
    ...(n.rootfs ? { rootfs: n.rootfs.path } : {}),
    append: n.append,
    smp: n.smp,
    memoryMiB: n.memoryMiB,
    accel: n.accel,
    binary: n.binary,
  }
}

const X_IGNORE_SHARED = { capabilities: [{ capability: 'x-ignore-shared', state: true }] }

async function waitMigration(qmp: QmpClient, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const st = await qmp.execute<Record<string, unknown>>('query-migrate')
    if (st.status === 'completed') return st
    if (st.status === 'failed' || st.status === 'cancelled') throw new KatarefError(`${what}: migration ${String(st.status)}: ${String(st['error-desc'] ?? '')}`, Code.INTERNAL, { status: st })
    if (Date.now() > until) throw new DeadlineError(`${what}: waiting for migration (status ${String(st.status)})`, timeoutMs)
    await sleep(10)
  }
}

export interface CreateTemplateOptions {
  templatePath: string
  /** Mount a tmpfs on the template dir (root). Default true. */
  mount?: boolean
  /** Pause before saving once the agent answered (Go: 2 s). */
  settleMs?: number
  agentDeadlineMs?: number
  logger?: Logger
}

export interface CreatedTemplate {
  paths: TemplatePaths
  mounted: boolean
  bootMs: number
  saveMs: number
  stateBytes: number
}

/** `factory init`: boot the template VM, pause, save with x-ignore-shared, stop it. */
export async function createQemuTemplate(cfg: TemplateVmConfig, opts: CreateTemplateOptions): Promise<CreatedTemplate> {
  const log = (opts.logger ?? nullLogger).child({ component: 'factory' })
  const n = normalizeTemplateConfig(cfg)
  const prep = await prepareTemplateDir(opts.templatePath, { memoryMiB: n.memoryMiB, mount: opts.mount ?? true })
  const { paths } = prep
  const vm = new QemuVm({ ...vmOptions(n), memoryBackend: { path: paths.memory, share: true }, logger: log })
  let qmp: QmpClient | undefined
  try {
    const t0 = performance.now()
    await vm.start()
    const agent = await KataAgent.connect({ dialer: unixDialer(vm.agentSocketPath), deadlineMs: opts.agentDeadlineMs ?? 120_000, consoleTail: async (l) => vm.consoleTail(l), logger: log })
    const bootMs = performance.now() - t0
    // The agent must see its host go away before the snapshot: a clone starts with no host connected.
    agent.close()
    await sleep(opts.settleMs ?? 2000)
    qmp = await connectQmpSocket(vm.qmpSocketPath, { logger: log, readyTimeoutMs: 20_000 })
    const t1 = performance.now()
    await qmp.execute('stop')
    await qmp.execute('migrate-set-capabilities', X_IGNORE_SHARED)
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(paths.state)}` })
    await waitMigration(qmp, 120_000, 'save template')
    const saveMs = performance.now() - t1
    const meta: QemuTemplateMeta = { kataref: 1, hypervisor: 'qemu', createdAt: new Date().toISOString(), config: n }
    writeTemplateMeta(paths, meta)
    qmp.close()
    await vm.stop()
    prep.release()
    const stateBytes = statSync(paths.state).size
    log.info({ dir: paths.dir, bootMs, saveMs, stateBytes }, 'VM template created')
    return { paths, mounted: prep.mounted, bootMs, saveMs, stateBytes }
  } catch (e) {
    qmp?.close()
    await vm.stop().catch(() => undefined)
    prep.release()
    destroyTemplateDirSync(paths.dir)
    throw new KatarefError(`create VM template in ${paths.dir}: ${errorMessage(e)}\n--- template VM console ---\n${vm.consoleTail(20)}`, Code.INTERNAL, { dir: paths.dir }, { cause: e })
  }
}

export class TemplateNotFoundError extends KatarefError {
  constructor(dir: string) {
    super(`no VM template in ${dir} (needs ${templatePaths(dir).memory} and ${templatePaths(dir).state})`, Code.NOT_FOUND, { dir })
  }
}

export class TemplateMismatchError extends KatarefError {
  constructor(dir: string, readonly fields: string[], problem = 'was made with a different config') {
    super(`VM template in ${dir} ${problem} (${fields.join(', ')})`, Code.FAILED_PRECONDITION, { dir, fields })
  }
}

/** Check that a template exists in `dir` and matches `cfg`; returns its paths and meta. */
export function checkQemuTemplate(dir: string, cfg: TemplateVmConfig): { paths: TemplatePaths; meta: QemuTemplateMeta; config: NormalizedTemplateConfig } {
  const paths = templatePaths(dir)
  if (!templateExists(dir)) throw new TemplateNotFoundError(paths.dir)
  const meta = readTemplateMeta<QemuTemplateMeta>(paths)
  const want = normalizeTemplateConfig(cfg)
  if (!meta || meta.kataref !== 1 || meta.hypervisor !== 'qemu') throw new TemplateMismatchError(paths.dir, ['template.json'])
  const diff = configMismatch(meta.config, want)
  if (diff.length) throw new TemplateMismatchError(paths.dir, diff)
  const short = sizeShortfall(meta.config, want)
  if (short.length) throw new TemplateMismatchError(paths.dir, short, 'is smaller than this sandbox needs and cannot grow')
  // The clone has the template's shape (its QEMU command line must match the saved one).
  return { paths, meta, config: meta.config }
}

export interface BootFromTemplateOptions {
  templatePath: string
  runDir?: string
  agentDeadlineMs?: number
  logger?: Logger
}

export interface TemplateClone {
  vm: QemuVm
  agent: KataAgent
  /** Spawn → agent answered Check. */
  readyMs: number
  /** migrate-incoming → migration completed. */
  restoreMs: number
}

/** A VM from the template: private mapping of the memory file, -incoming defer, migrate-incoming, cont. */
export async function bootFromQemuTemplate(cfg: TemplateVmConfig, opts: BootFromTemplateOptions): Promise<TemplateClone> {
  const log = (opts.logger ?? nullLogger).child({ component: 'factory' })
  const { paths, config } = checkQemuTemplate(opts.templatePath, cfg)
  const t0 = performance.now()
  const vm = new QemuVm({ ...vmOptions(config), memoryBackend: { path: paths.memory, share: false }, incoming: 'defer', logger: log, ...(opts.runDir ? { runDir: opts.runDir } : {}) })
  let qmp: QmpClient | undefined
  try {
    await vm.start()
    qmp = await connectQmpSocket(vm.qmpSocketPath, { logger: log, readyTimeoutMs: 20_000 })
    await qmp.execute('migrate-set-capabilities', X_IGNORE_SHARED)
    const t1 = performance.now()
    await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(paths.state)}` })
    await waitMigration(qmp, 60_000, 'restore from template')
    const restoreMs = performance.now() - t1
    const status = await qmp.execute<{ status: string }>('query-status')
    if (status.status !== 'paused') log.warn({ status: status.status }, 'VM from template is not paused after restore')
    await qmp.execute('cont')
    qmp.close()
    qmp = undefined
    const agent = await KataAgent.connect({ dialer: unixDialer(vm.agentSocketPath), deadlineMs: opts.agentDeadlineMs ?? 60_000, consoleTail: async (l) => vm.consoleTail(l), logger: log })
    const readyMs = performance.now() - t0
    try {
      // As Go's factory GetVM: clones share the template's RNG state and carry its clock.
      await agent.agent.reseedRandomDev({ data: randomBytes(512) }, { timeoutMs: 10_000 })
      const now = Date.now()
      await agent.agent.setGuestDateTime({ Sec: BigInt(Math.floor(now / 1000)), Usec: BigInt((now % 1000) * 1000) }, { timeoutMs: 10_000 })
    } catch (e) {
      agent.close()
      throw new KatarefError(`VM from template: reseed RNG / sync guest time: ${errorMessage(e)}`, Code.INTERNAL, {}, { cause: e })
    }
    log.info({ dir: paths.dir, readyMs, restoreMs }, 'VM booted from template')
    return { vm, agent, readyMs, restoreMs }
  } catch (e) {
    qmp?.close()
    await vm.stop().catch(() => undefined)
    throw e
  }
}
