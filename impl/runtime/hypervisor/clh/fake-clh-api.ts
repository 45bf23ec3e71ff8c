// A recording fake of Cloud Hypervisor's REST API on a Unix socket (CLH needs KVM; spec §13): it
// records method, path and body of every request and implements the vm.info state machine —
// create → Created, boot → Running, pause → Paused, resume → Running, restore → Paused,
// shutdown → Shutdown — plus snapshot (Paused only) writing config.json / state.json /
// memory-ranges into the destination dir, and restore reading them back.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import type { ClhVmState } from './clh-api.ts'

export interface RecordedRequest {
  method: string
  path: string
  /** Parsed JSON body; undefined when there was none. */
  body: unknown
}

export class FakeClhApi {
  readonly requests: RecordedRequest[] = []
  vm: { config: Record<string, unknown>; state: ClhVmState } | undefined
  /** Paths whose next request fails with this status and text. */
  readonly failNext = new Map<string, { status: number; text: string }>()
  private server: Server | undefined

  constructor(readonly socketPath: string) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.socketPath, () => resolve())
    })
  }

  async close(): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s) await new Promise<void>((r) => s.close(() => r()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = ''
    for await (const c of req) text += String(c)
    const path = req.url ?? ''
    const body = text ? (JSON.parse(text) as unknown) : undefined
    this.requests.push({ method: req.method ?? '', path, body })
    const reply = (status: number, payload?: unknown): void => {
      if (payload === undefined) {
        res.writeHead(status).end()
        return
      }
      const out = typeof payload === 'string' ? payload : JSON.stringify(payload)
      res.writeHead(status, { 'Content-Type': typeof payload === 'string' ? 'text/plain' : 'application/json' }).end(out)
    }
    const fail = this.failNext.get(path)
    if (fail) {
      this.failNext.delete(path)
      reply(fail.status, fail.text)
      return
    }
    const endpoint = `${req.method} ${path.replace(/^\/api\/v1\//, '')}`
    const state = this.vm?.state
    const transition = (from: ClhVmState[], to: ClhVmState): void => {
      if (!this.vm) return reply(500, 'VM is not created')
      if (!from.includes(this.vm.state)) return reply(500, `Invalid state transition: ${this.vm.state} → ${to}`)
      this.vm.state = to
      reply(204)
    }
    switch (endpoint) {
      case 'GET vmm.ping':
        return reply(200, { version: 'fake-clh' })
      case 'PUT vm.create':
        if (this.vm) return reply(500, 'VM is already created')
        this.vm = { config: body as Record<string, unknown>, state: 'Created' }
        return reply(204)
      case 'PUT vm.boot':
        return transition(['Created'], 'Running')
      case 'GET vm.info':
        if (!this.vm) return reply(500, 'VM is not created')
        return reply(200, { config: this.vm.config, state: this.vm.state })
      case 'PUT vm.pause':
        return transition(['Running'], 'Paused')
      case 'PUT vm.resume':
        return transition(['Paused'], 'Running')
      case 'PUT vm.shutdown':
        return transition(['Running', 'Paused', 'Created'], 'Shutdown')
      case 'PUT vm.snapshot': {
        if (state !== 'Paused') return reply(500, `VM is not paused (${state ?? 'not created'})`)
        const dir = fileUrlPath((body as { destination_url?: string }).destination_url)
        if (!dir) return reply(400, 'bad destination_url')
        mkdirSync(dir, { recursive: true })
        writeFileSync(join(dir, 'config.json'), JSON.stringify(this.vm!.config))
        writeFileSync(join(dir, 'state.json'), JSON.stringify({ fake: 'device state' }))
        writeFileSync(join(dir, 'memory-ranges'), '')
        return reply(204)
      }
      case 'PUT vm.restore': {
        if (this.vm) return reply(500, 'VM is already created')
        const dir = fileUrlPath((body as { source_url?: string }).source_url)
        if (!dir || !existsSync(join(dir, 'config.json')) || !existsSync(join(dir, 'state.json'))) return reply(500, `cannot restore from ${String(dir)}`)
        this.vm = { config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>, state: 'Paused' }
        return reply(204)
      }
      case 'PUT vmm.shutdown':
        return reply(204)
      default:
        return reply(404, `no route ${endpoint}`)
    }
  }
}

function fileUrlPath(u: string | undefined): string | undefined {
  return u?.startsWith('file://') ? u.slice('file://'.length) : undefined
}
