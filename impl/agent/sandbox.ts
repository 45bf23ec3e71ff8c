// The sandbox is the agent's top-level domain object: created once per VM by CreateSandbox,
// torn down by DestroySandbox. RPC handlers call into it; it never builds wire statuses.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Code, InvalidInputError, KatarefError } from '../types/errors.ts'
import type { Logger } from '../types/logger.ts'
import type { AgentConfig } from './config.ts'
import { AgentStorages } from './rpc/storages.ts'
import type { StorageEnv, StorageLike } from './storage/index.ts'

export class SandboxError extends KatarefError {}

export interface CreateSandboxParams {
  sandboxId: string
  hostname: string
  dns: string[]
  /** Sandbox-level storages (only multi-layer EROFS groups are handled so far). */
  storages?: readonly StorageLike[]
  kernelModuleCount: number
}

export interface CreateContainerParams {
  containerId: string
  storages: readonly StorageLike[]
}

// Linux limits a hostname to HOST_NAME_MAX (64) bytes.
const HOST_NAME_MAX = 64

export class Sandbox {
  private _id: string | undefined
  private _hostname: string | undefined
  /** Containers created by CreateContainer (storages only so far; processes are added elsewhere). */
  readonly containers = new Map<string, { mounts: string[] }>()
  /** Storage handlers and their bookkeeping (container_mounts, container_verity_devices). */
  readonly storage: AgentStorages

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
    storageEnv?: StorageEnv,
  ) {
    this.storage = new AgentStorages({
      logger: log,
      ...(storageEnv ? { env: storageEnv } : {}),
      ...(config.devmapper !== undefined ? { devmapper: config.devmapper } : {}),
      ...(config.failpoints !== undefined ? { failpoints: config.failpoints } : {}),
    })
  }

  get id(): string | undefined {
    return this._id
  }
  get hostname(): string | undefined {
    return this._hostname
  }
  get running(): boolean {
    return this._id !== undefined
  }

  /** Kata layout: sandbox dir for shm/resolv.conf, shared dir for container files. */
  get sandboxDir(): string {
    return join(this.config.rootDir, 'sandbox')
  }
  get sharedContainersDir(): string {
    return join(this.config.rootDir, 'shared', 'containers')
  }

  async createSandbox(p: CreateSandboxParams): Promise<void> {
    if (this.running) {
      throw new SandboxError(`sandbox ${this._id} already exists`, Code.ALREADY_EXISTS, { sandboxId: this._id })
    }
    validateHostname(p.hostname)
    for (const [i, line] of p.dns.entries()) {
      if (/[\n\0]/.test(line)) throw new InvalidInputError(`dns[${i}]`, 'contains a newline or NUL byte')
    }
    // Kernel modules arrive with a later issue's handler; refusing beats silently ignoring.
    if (p.kernelModuleCount > 0) {
      throw new SandboxError('kernel_modules are not supported by this agent yet', Code.UNIMPLEMENTED)
    }

    await mkdir(this.sandboxDir, { recursive: true })
    await mkdir(this.sharedContainersDir, { recursive: true })
    try {
      if (p.dns.length > 0) await writeFile(join(this.sandboxDir, 'resolv.conf'), p.dns.join('\n') + '\n')
      if (p.hostname !== '' && this.config.manageHostname) {
        await writeFile('/proc/sys/kernel/hostname', p.hostname)
      }
    } catch (e) {
      await this.removeDirs()
      throw new SandboxError(`create sandbox ${p.sandboxId}`, Code.INTERNAL, { sandboxId: p.sandboxId }, { cause: e })
    }
    if (p.storages?.length) {
      try {
        // A failing group undoes itself; its typed error (code, step, layer) goes back as is.
        await this.storage.add(p.storages)
      } catch (e) {
        await this.removeDirs()
        throw e
      }
    }
    this._id = p.sandboxId
    this._hostname = p.hostname
    this.log.info({ sandboxId: p.sandboxId, hostname: p.hostname }, 'sandbox created')
  }

  /**
   * CreateContainer, storage part: mount the request's storages for `containerId` and record the
   * container. A failure leaves nothing of this request behind (the handler rolls back).
   */
  async createContainer(p: CreateContainerParams): Promise<void> {
    if (this.containers.has(p.containerId)) {
      throw new SandboxError(`container ${p.containerId} already exists`, Code.ALREADY_EXISTS, { containerId: p.containerId })
    }
    if (p.containerId === '' || /[/\\\0]|\.\./.test(p.containerId)) throw new InvalidInputError('container_id', 'empty or contains "/", "\\", ".." or NUL', { containerId: p.containerId })
    const mounts = await this.storage.addContainerStorages(p.containerId, p.storages)
    this.containers.set(p.containerId, { mounts })
    this.log.info({ containerId: p.containerId, mounts }, 'container created')
  }

  /** RemoveContainer: unmount the container's storages and destroy its verity devices (reverse order). */
  async removeContainer(containerId: string): Promise<void> {
    if (!this.containers.has(containerId)) {
      throw new SandboxError(`container ${containerId} not found`, Code.NOT_FOUND, { containerId })
    }
    const report = await this.storage.removeContainer(containerId)
    this.containers.delete(containerId)
    this.log.info({ containerId, destroyed: report.destroyedVerityDevices, failures: report.failures }, 'container removed')
  }

  /** Idempotent: destroying a sandbox that is not there only makes sure its directories are gone. */
  async destroySandbox(): Promise<void> {
    const id = this._id
    const report = await this.storage.destroy()
    if (report) this.log.info({ destroyed: report.destroyedVerityDevices, unmounted: report.unmounted, failures: report.failures }, 'sandbox storages torn down')
    this.containers.clear()
    await this.removeDirs()
    this._id = undefined
    this._hostname = undefined
    this.log.info({ sandboxId: id }, 'sandbox destroyed')
  }

  private async removeDirs(): Promise<void> {
    await rm(this.sandboxDir, { recursive: true, force: true })
    await rm(join(this.config.rootDir, 'shared'), { recursive: true, force: true })
  }
}

function validateHostname(h: string): void {
  if (Buffer.byteLength(h) > HOST_NAME_MAX) {
    throw new InvalidInputError('hostname', `longer than ${HOST_NAME_MAX} bytes`, { hostname: h })
  }
  if (/[\0/\s]/.test(h)) throw new InvalidInputError('hostname', 'contains NUL, "/" or white space', { hostname: h })
}
