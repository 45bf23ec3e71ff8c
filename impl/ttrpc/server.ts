// ttrpc server: a registry of services plus connections served over any Duplex,
// and a unix-socket listener for convenience.
import { lstat, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import type { Duplex } from 'node:stream'
import type { DescMethod, DescService } from '@bufbuild/protobuf'
import { Code, KatarefError } from '../types/errors.ts'
import { nullLogger, type Logger } from '../types/logger.ts'
import { ServerConnection, type AnyHandler, type RegisteredService, type ServiceLookup } from './server-connection.ts'
import type { ServiceImpl } from './service-types.ts'

export { ServerConnection }

export interface TtrpcServerOptions {
  logger?: Logger
}

export class TtrpcServer implements ServiceLookup {
  private readonly logger: Logger
  private readonly services = new Map<string, RegisteredService>()
  private readonly connections = new Set<ServerConnection>()
  private listener: { server: Server; path: string } | undefined

  constructor(opts: TtrpcServerOptions = {}) {
    this.logger = (opts.logger ?? nullLogger).child({ component: 'ttrpc-server' })
  }

  /**
   * Registers handlers keyed by method local name (`createSandbox`). Methods of `service` missing
   * from `impl` answer 12 UNIMPLEMENTED `method <Name>`. Registering a service twice throws.
   */
  register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>): this {
    if (this.services.has(service.typeName)) {
      throw new KatarefError(`ttrpc: service ${service.typeName} is already registered`, Code.ALREADY_EXISTS, { service: service.typeName })
    }
    const known = new Set(service.methods.map((m) => m.localName))
    for (const key of Object.keys(impl)) {
      if (!known.has(key)) {
        throw new KatarefError(`ttrpc: service ${service.typeName} has no method ${key}`, Code.INVALID_ARGUMENT, { service: service.typeName, method: key })
      }
    }
    const byWireName = new Map<string, DescMethod>(service.methods.map((m) => [m.name, m]))
    this.services.set(service.typeName, { service, impl: { ...impl } as Record<string, AnyHandler | undefined>, byWireName })
    return this
  }

  lookup(serviceName: string): RegisteredService | undefined {
    return this.services.get(serviceName)
  }

  /** Serves ttrpc on an already connected byte stream (socket, vsock bridge, virtio-serial fd, test pair). */
  serveConnection(duplex: Duplex): ServerConnection {
    const conn = new ServerConnection(duplex, this, this.logger)
    this.connections.add(conn)
    void conn.closed.then(() => this.connections.delete(conn))
    return conn
  }

  /** Listens on a unix socket; a stale socket file at `path` is removed first. */
  async listen(path: string): Promise<void> {
    if (this.listener) throw new KatarefError(`ttrpc: already listening on ${this.listener.path}`, Code.FAILED_PRECONDITION, { path })
    await removeStaleSocket(path)
    const server = createServer((sock) => {
      this.serveConnection(sock)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => this.logger.warn({ err, path }, 'ttrpc: listener error'))
    this.listener = { server, path }
    this.logger.debug({ path }, 'ttrpc: listening')
  }

  /** Stops listening (removing the socket file) and closes every connection. Idempotent. */
  async close(): Promise<void> {
    const listener = this.listener
    this.listener = undefined
    const conns = [...this.connections]
    await Promise.all(conns.map((c) => c.close()))
    if (listener) {
      await new Promise<void>((resolve) => listener.server.close(() => resolve()))
      await rm(listener.path, { force: true })
    }
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  let st
  try {
    st = await lstat(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new KatarefError(`ttrpc: inspect socket path ${path}`, Code.INTERNAL, { path }, { cause: e })
  }
  if (!st.isSocket()) {
    throw new KatarefError(`ttrpc: ${path} exists and is not a socket`, Code.FAILED_PRECONDITION, { path })
  }
  await rm(path, { force: true })
}
