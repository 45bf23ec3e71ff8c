// Event publishing (protocols.md §3.7): containerd.services.events.ttrpc.v1.Events/Forward on
// TTRPC_ADDRESS; fallback `<publish-binary> --address <addr> publish --topic T --namespace NS` with
// the serialized Any on stdin. Events go out one at a time in the order they were published;
// a failure is logged and never reaches the caller.
import { spawn } from 'node:child_process'
import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf'
import { AnySchema, timestampFromDate } from '@bufbuild/protobuf/wkt'
import { Events } from '../../gen/containerd/events_pb.ts'
import { TtrpcClient } from '../../ttrpc/index.ts'
import { errorMessage } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { unixDialer } from '../agent/dialer.ts'
import { addressPath } from './flags.ts'

export const TOPIC = {
  create: '/tasks/create',
  start: '/tasks/start',
  exit: '/tasks/exit',
  delete: '/tasks/delete',
  execAdded: '/tasks/exec-added',
  execStarted: '/tasks/exec-started',
} as const

export interface EventPublisher {
  publish<M extends DescMessage>(topic: string, schema: M, event: MessageInitShape<M>): void
  /** Resolves when everything published so far has been sent (or failed). */
  flush(): Promise<void>
  close(): Promise<void>
}

export interface ForwarderOptions {
  namespace: string
  /** TTRPC_ADDRESS (`/run/containerd/containerd.sock.ttrpc`, `unix://` accepted). */
  ttrpcAddress?: string
  /** Fallback: containerd's binary and its grpc address. */
  publishBinary?: string
  address?: string
  logger?: Logger
  timeoutMs?: number
}

/** The Any payload as containerd expects it: type_url = the bare proto name. */
export function eventAny<M extends DescMessage>(schema: M, event: MessageInitShape<M>): { typeUrl: string; value: Uint8Array } {
  return { typeUrl: schema.typeName, value: toBinary(schema, create(schema, event)) }
}

export class EventForwarder implements EventPublisher {
  private readonly log: Logger
  private queue: Promise<void> = Promise.resolve()
  private client: TtrpcClient | undefined

  constructor(private readonly opts: ForwarderOptions) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'events' })
  }

  publish<M extends DescMessage>(topic: string, schema: M, event: MessageInitShape<M>): void {
    const any = eventAny(schema, event)
    const timestamp = timestampFromDate(new Date())
    this.queue = this.queue.then(() => this.send(topic, any, timestamp)).catch((e) => {
      this.log.warn({ topic, err: errorMessage(e) }, 'publish event failed')
    })
  }

  flush(): Promise<void> {
    return this.queue
  }

  async close(): Promise<void> {
    await this.queue
    await this.client?.close()
    this.client = undefined
  }

  private async send(topic: string, any: { typeUrl: string; value: Uint8Array }, timestamp: ReturnType<typeof timestampFromDate>): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? 5_000
    if (this.opts.ttrpcAddress) {
      try {
        const client = await this.connected()
        await client.call(Events, 'forward', { envelope: { timestamp, namespace: this.opts.namespace, topic, event: any } }, { timeoutMs })
        this.log.debug({ topic, type: any.typeUrl }, 'event forwarded')
        return
      } catch (e) {
        this.client?.close()
        this.client = undefined
        if (!this.opts.publishBinary) throw e
        this.log.warn({ topic, err: errorMessage(e) }, 'ttrpc Forward failed; trying the publish binary')
      }
    }
    if (this.opts.publishBinary) {
      await publishWithBinary(this.opts.publishBinary, this.opts.address ?? '', this.opts.namespace, topic, toBinary(AnySchema, create(AnySchema, any)), timeoutMs)
      this.log.debug({ topic, type: any.typeUrl }, 'event published with the publish binary')
      return
    }
    throw new Error('no TTRPC_ADDRESS and no -publish-binary: event dropped')
  }

  private async connected(): Promise<TtrpcClient> {
    if (this.client && !this.client.isClosed) return this.client
    const sock = await unixDialer(addressPath(this.opts.ttrpcAddress!)).dial()
    this.client = new TtrpcClient(sock, { logger: this.log })
    return this.client
  }
}

function publishWithBinary(bin: string, address: string, namespace: string, topic: string, payload: Uint8Array, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--address', address, 'publish', '--topic', topic, '--namespace', namespace], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, sig) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`${bin} publish ${topic}: exit ${code ?? sig}: ${stderr.trim()}`))
    })
    child.stdin.end(Buffer.from(payload))
  })
}

/** Collects events in memory (tests, and runs without containerd). */
export class RecordingPublisher implements EventPublisher {
  readonly events: { topic: string; typeUrl: string; value: Uint8Array }[] = []
  publish<M extends DescMessage>(topic: string, schema: M, event: MessageInitShape<M>): void {
    this.events.push({ topic, ...eventAny(schema, event) })
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
