// Cloud Hypervisor REST API over its Unix socket (base `http://localhost/api/v1`), the calls the Go
// CLH driver makes (spec §7.2): vm.create, vm.boot, vm.info, vm.pause, vm.resume, vm.snapshot,
// vm.restore, vm.shutdown, vmm.ping, vmm.shutdown. Non-2xx answers become ClhApiError with the body.
import { request } from 'node:http'
import { Code, DeadlineError, KatarefError } from '../../../types/errors.ts'

/** CLH API timeout (Go: 1 s; 20 s for confidential guests). */
export const CLH_API_TIMEOUT_MS = 1000
export const CLH_API_TIMEOUT_CONFIDENTIAL_MS = 20_000
export const API_BASE = '/api/v1'

export type ClhVmState = 'Created' | 'Running' | 'Shutdown' | 'Paused' | 'BreakPoint'

export interface ClhVmInfo {
  config: Record<string, unknown>
  state: ClhVmState
  memory_actual_size?: number
}

export class ClhApiError extends KatarefError {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`CLH API ${method} ${path}: HTTP ${status}${body ? `: ${body.trim()}` : ''}`, Code.INTERNAL, { method, path, status })
  }
}

export interface ClhApiOptions {
  socketPath: string
  timeoutMs?: number
}

export class ClhApiClient {
  readonly socketPath: string
  readonly timeoutMs: number

  constructor(opts: ClhApiOptions) {
    this.socketPath = opts.socketPath
    this.timeoutMs = opts.timeoutMs ?? CLH_API_TIMEOUT_MS
  }

  /** One HTTP/1.1 call; resolves with the body text (2xx), else ClhApiError. */
  call(method: 'GET' | 'PUT', endpoint: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<string> {
    const path = `${API_BASE}/${endpoint}`
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          host: 'localhost',
          method,
          path,
          headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () => {
            clearTimeout(timer)
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300) resolve(text)
            else reject(new ClhApiError(method, path, status, text))
          })
        },
      )
      const timer = setTimeout(() => {
        req.destroy()
        reject(new DeadlineError(`CLH API ${method} ${path}`, timeoutMs))
      }, timeoutMs)
      req.on('error', (e) => {
        clearTimeout(timer)
        reject(new KatarefError(`CLH API ${method} ${path}: ${e.message}`, Code.UNAVAILABLE, { socketPath: this.socketPath }, { cause: e }))
      })
      if (payload) req.write(payload)
      req.end()
    })
  }

  ping(): Promise<string> {
    return this.call('GET', 'vmm.ping')
  }
  async createVm(config: Record<string, unknown>): Promise<void> {
    await this.call('PUT', 'vm.create', config)
  }
  async bootVm(): Promise<void> {
    await this.call('PUT', 'vm.boot')
  }
  async info(): Promise<ClhVmInfo> {
    return JSON.parse(await this.call('GET', 'vm.info')) as ClhVmInfo
  }
  async pause(): Promise<void> {
    await this.call('PUT', 'vm.pause')
  }
  async resume(): Promise<void> {
    await this.call('PUT', 'vm.resume')
  }
  async snapshot(destinationUrl: string): Promise<void> {
    await this.call('PUT', 'vm.snapshot', { destination_url: destinationUrl })
  }
  /** `prefault` is omitted, as the Go driver sends it. */
  async restore(sourceUrl: string, timeoutMs?: number): Promise<void> {
    await this.call('PUT', 'vm.restore', { source_url: sourceUrl }, timeoutMs)
  }
  async shutdownVm(): Promise<void> {
    await this.call('PUT', 'vm.shutdown')
  }
  async shutdownVmm(): Promise<void> {
    await this.call('PUT', 'vmm.shutdown')
  }
}
