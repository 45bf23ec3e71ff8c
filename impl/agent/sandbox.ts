// The sandbox is the agent's top-level domain object: created once per VM by CreateSandbox,
// torn down by DestroySandbox. RPC handlers call into it; it never builds wire statuses.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Code, InvalidInputError, KatarefError } from '../types/errors.ts'
import type { Logger } from '../types/logger.ts'
import type { AgentConfig } from './config.ts'

export class SandboxError extends KatarefError {}

export interface CreateSandboxParams {
  sandboxId: string
  hostname: string
  dns: string[]
  storageCount: number
  kernelModuleCount: number
}

// Linux limits a hostname to HOST_NAME_MAX (64) bytes.
const HOST_NAME_MAX = 64

export class Sandbox {
  private _id: string | undefined
  private _hostname: string | undefined

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

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
    // Storages and kernel modules arrive with later issues' handlers; refusing beats silently ignoring.
    if (p.storageCount > 0) {
      throw new SandboxError('sandbox storages are not supported by this agent yet', Code.UNIMPLEMENTED)
    }
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
    this._id = p.sandboxId
    this._hostname = p.hostname
    this.log.info({ sandboxId: p.sandboxId, hostname: p.hostname }, 'sandbox created')
  }

  /** Idempotent: destroying a sandbox that is not there only makes sure its directories are gone. */
  async destroySandbox(): Promise<void> {
    const id = this._id
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
