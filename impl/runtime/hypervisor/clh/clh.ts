// Cloud Hypervisor driver, VM templating half (spec §7.2, Go virtcontainers/clh.go after c0f9744225):
// VM config for to-be-template / from-template VMs (memory zone `mem0` backed by the template's memory
// file, shared for the template, private copy-on-write for clones), CreateVM's "restoring" mark,
// StartVM's restore path (copy config.json/state.json into the VM dir, point vsock at the VM's own
// socket, vm.restore, vm.info), PauseVM / ResumeVM / SaveVM (vm.snapshot + config rewrite).
// The CLH process itself is launched elsewhere; this talks to its API socket.
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Code, KatarefError, errorMessage } from '../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../types/logger.ts'
import type { ClhApiClient } from './clh-api.ts'
import { isObject, parseRawJson, stringifyRawJson, type RawJson } from './json-raw.ts'

export const CLH_VSOCK_SOCKET = 'clh.sock'
export const CLH_CONFIG_FILE = 'config.json'
export const CLH_STATE_FILE = 'state.json'
export const VIRTIO_FS_TEMPLATE_ERROR = 'VM templating has been enabled with virtio-fs and this configuration will not work'

export class ClhError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, Code.FAILED_PRECONDITION, context, options)
  }
}

export interface ClhVmInput {
  id: string
  kernel: string
  initrd?: string
  image?: string
  cmdline: string
  vcpus: number
  maxVcpus?: number
  memoryMiB: number
  /** Non-template VMs only. */
  hotplugMemoryMiB?: number
  /** `virtio-fs`, `virtio-fs-nydus`, `none`, `` … */
  sharedFs?: string
  confidential?: boolean
  bootToBeTemplate?: boolean
  bootFromTemplate?: boolean
  /** `<template>/memory`. */
  memoryPath?: string
  /** `<template>/state.json`. */
  devicesStatePath?: string
  /** Per-VM dirs live in `<vmStorePath>/<id>/`. */
  vmStorePath: string
}

/** Template config check (spec §7.1): both flags → error; a flag without MemoryPath; from-template without DevicesStatePath. */
export function checkTemplateConfig(c: Pick<ClhVmInput, 'bootToBeTemplate' | 'bootFromTemplate' | 'memoryPath' | 'devicesStatePath'>): void {
  if (c.bootToBeTemplate && c.bootFromTemplate) throw new ClhError("Cannot set both 'to be' and 'from' vm tempate")
  if ((c.bootToBeTemplate || c.bootFromTemplate) && !c.memoryPath) throw new ClhError('Missing MemoryPath for vm template')
  if (c.bootFromTemplate && !c.devicesStatePath) throw new ClhError('Missing DevicesStatePath to load from vm template')
}

export function vmDir(c: Pick<ClhVmInput, 'vmStorePath' | 'id'>): string {
  return join(c.vmStorePath, c.id)
}

const MIB = 1024 * 1024

/** The `memory` section of vm.create (row 38). */
export function memoryConfig(c: ClhVmInput): Record<string, unknown> {
  if (c.bootToBeTemplate || c.bootFromTemplate) {
    if (c.sharedFs === 'virtio-fs' || c.sharedFs === 'virtio-fs-nydus') throw new ClhError(VIRTIO_FS_TEMPLATE_ERROR, { sharedFs: c.sharedFs })
    try {
      statSync(c.memoryPath!)
    } catch (e) {
      throw new ClhError(`memory file ${c.memoryPath} is not accessible: ${errorMessage(e)}`, { memoryPath: c.memoryPath }, { cause: e })
    }
    const shared = c.bootToBeTemplate === true
    return {
      size: 0,
      mergeable: false,
      hotplug_method: 'Acpi',
      shared,
      hugepages: false,
      prefault: false,
      thp: true,
      zones: [{ id: 'mem0', size: c.memoryMiB * MIB, file: c.memoryPath, shared, mergeable: false, hugepages: false, prefault: false }],
    }
  }
  const m: Record<string, unknown> = { size: c.memoryMiB * MIB, mergeable: false, hotplug_method: 'Acpi', shared: c.sharedFs === 'virtio-fs' || c.sharedFs === 'virtio-fs-nydus', hugepages: false, prefault: false, thp: true }
  if (c.hotplugMemoryMiB && c.hotplugMemoryMiB > 0) m.hotplug_size = c.hotplugMemoryMiB * MIB
  return m
}

/** The whole vm.create body. */
export function vmCreateConfig(c: ClhVmInput): Record<string, unknown> {
  const payload: Record<string, unknown> = { kernel: c.kernel, cmdline: c.cmdline }
  if (c.initrd) payload.initramfs = c.initrd
  const cfg: Record<string, unknown> = {
    payload,
    cpus: { boot_vcpus: c.vcpus, max_vcpus: c.maxVcpus ?? c.vcpus },
    memory: memoryConfig(c),
    vsock: { cid: 3, socket: join(vmDir(c), CLH_VSOCK_SOCKET) },
    serial: { mode: 'Off' },
    console: { mode: 'Off' },
  }
  if (c.image) cfg.disks = [{ path: c.image, readonly: true }]
  return cfg
}

function readJson(path: string): RawJson {
  return parseRawJson(readFileSync(path, 'utf8'))
}

/** Numbers as written; mode 0600 also when the file already existed. */
function writeJson(path: string, v: RawJson): void {
  writeFileSync(path, stringifyRawJson(v), { mode: 0o600 })
  chmodSync(path, 0o600)
}

/**
 * SaveVM's config rewrite for a to-be-template VM: `memory.shared` and every `memory.zones[].shared`
 * false, file 0600, numbers as written (row 36).
 */
export function rewriteSnapshotConfig(configPath: string): void {
  const cfg = readJson(configPath)
  const mem = isObject(cfg) ? cfg.memory : undefined
  if (!isObject(cfg) || !isObject(mem)) throw new ClhError('invalid snapshot config structure: memory section not found or invalid', { configPath })
  const zones = mem.zones
  if (!Array.isArray(zones)) throw new ClhError('invalid snapshot config structure: zones array in memory section not found or invalid', { configPath })
  mem.shared = false
  for (const z of zones) {
    if (!isObject(z)) throw new ClhError('invalid snapshot config structure: zone in memory section not found or invalid', { configPath })
    z.shared = false
  }
  writeJson(configPath, cfg)
}

/**
 * StartVM's restore preparation (row 39): copy config.json and state.json from the template dir into
 * the VM dir keeping their mode, then point `vsock.socket` at this VM's own socket (file 0600).
 */
export function prepareRestore(templateDir: string, c: Pick<ClhVmInput, 'vmStorePath' | 'id'>): void {
  const dest = vmDir(c)
  mkdirSync(dest, { recursive: true, mode: 0o750 })
  for (const f of [CLH_CONFIG_FILE, CLH_STATE_FILE]) {
    const from = join(templateDir, f)
    const to = join(dest, f)
    try {
      copyFileSync(from, to)
      chmodSync(to, statSync(from).mode & 0o7777)
    } catch (e) {
      throw new ClhError(`failed to copy ${f}: ${errorMessage(e)}`, { from, to }, { cause: e })
    }
  }
  const configPath = join(dest, CLH_CONFIG_FILE)
  try {
    const cfg = readJson(configPath)
    if (!isObject(cfg)) throw new Error('config is not an object')
    const vsock = cfg.vsock
    if (!isObject(vsock)) throw new Error('vsock section not found')
    vsock.socket = join(dest, CLH_VSOCK_SOCKET)
    writeJson(configPath, cfg)
  } catch (e) {
    throw new ClhError(`failed to update vsock socket path: ${errorMessage(e)}`, { configPath }, { cause: e })
  }
}

export interface ClhVmOptions {
  api: ClhApiClient
  logger?: Logger
  /** StartVM's boot timeout, used for vm.restore (Go: the boot timeout). */
  bootTimeoutMs?: number
}

/** One CLH VM behind its API socket. */
export class ClhVm {
  private restoring = false
  private config: Record<string, unknown> | undefined
  private readonly log: Logger

  constructor(
    readonly input: ClhVmInput,
    private readonly opts: ClhVmOptions,
  ) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'clh', id: input.id })
  }

  get isRestoring(): boolean {
    return this.restoring
  }

  /** CreateVM: check the template config, build the VM config, mark "restoring" when a template is there. */
  createVm(): Record<string, unknown> {
    const c = this.input
    checkTemplateConfig(c)
    this.config = vmCreateConfig(c)
    if (c.bootToBeTemplate || c.bootFromTemplate) {
      if (!c.confidential) this.log.warn('VM templating: the VM cannot hot-plug memory (no hotplug_size)')
    }
    if (c.bootFromTemplate) {
      const dir = dirname(c.memoryPath!)
      const have = (p: string): boolean => {
        try {
          statSync(p)
          return true
        } catch {
          return false
        }
      }
      this.restoring = have(join(dir, CLH_CONFIG_FILE)) && have(join(dir, CLH_STATE_FILE)) && have(c.memoryPath!)
    }
    return this.config
  }

  /** StartVM: restore from the template (left paused) or vm.create + vm.boot. */
  async startVm(): Promise<void> {
    if (!this.config) this.createVm()
    if (this.restoring) {
      prepareRestore(dirname(this.input.memoryPath!), this.input)
      await this.restoreVm()
      return
    }
    await this.opts.api.createVm(this.config!)
    await this.opts.api.bootVm()
  }

  /** vm.restore from `<vmStorePath>/<id>`, then vm.info; a state other than Paused is only a warning (row 37). */
  async restoreVm(): Promise<void> {
    const dir = vmDir(this.input)
    const statePath = join(dir, CLH_STATE_FILE)
    const configPath = join(dir, CLH_CONFIG_FILE)
    for (const [what, p] of [
      ['state', statePath],
      ['config', configPath],
    ] as const) {
      try {
        statSync(p)
      } catch (e) {
        throw new ClhError(`failed to access ${what} file ${p}: ${errorMessage(e)}`, { path: p }, { cause: e })
      }
    }
    await this.opts.api.restore(`file://${dir}`, this.opts.bootTimeoutMs)
    const info = await this.opts.api.info()
    if (info.state !== 'Paused') this.log.warn({ state: info.state }, 'VM restored from template is not paused')
  }

  pauseVm(): Promise<void> {
    return this.opts.api.pause()
  }

  resumeVm(): Promise<void> {
    return this.opts.api.resume()
  }

  /** SaveVM: vm.snapshot into the memory file's dir; a to-be-template VM's config.json then gets shared=false. */
  async saveVm(): Promise<void> {
    const c = this.input
    if (!c.memoryPath) throw new ClhError('SaveVM needs MemoryPath')
    const dir = dirname(c.memoryPath)
    await this.opts.api.snapshot(`file://${dir}`)
    if (c.bootToBeTemplate) rewriteSnapshotConfig(join(dir, CLH_CONFIG_FILE))
  }

  async stopVm(): Promise<void> {
    await this.opts.api.shutdownVm()
  }
}
