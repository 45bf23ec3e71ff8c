// The runtime's handle on one guest agent: dial, wait for readiness, typed clients for
// grpc.AgentService and grpc.Health. Mirrors Kata's `kataAgent` (virtcontainers/kata_agent.go).
import { setTimeout as sleep } from 'node:timers/promises'
import { AgentService } from '../../gen/agent_pb.ts'
import { Health, HealthCheckResponse_ServingStatus } from '../../gen/health_pb.ts'
import { createServiceClient, TtrpcClient, type ServiceClient } from '../../ttrpc/index.ts'
import { Code, KatarefError, errorMessage } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import type { AgentDialer } from './dialer.ts'

/** The agent did not answer grpc.Health/Check before the deadline; carries the guest console tail. */
export class AgentNotReadyError extends KatarefError {
  constructor(
    readonly address: string,
    readonly waitedMs: number,
    readonly lastError: string,
    readonly consoleTail: string,
  ) {
    super(
      `agent at ${address} not ready: deadline of ${waitedMs} ms exceeded (last error: ${lastError})` +
        (consoleTail ? `\n--- last lines of the guest console ---\n${consoleTail}` : ''),
      Code.DEADLINE_EXCEEDED,
      { address, waitedMs },
    )
  }
}

export interface ConnectOptions {
  dialer: AgentDialer
  /** Total time allowed for the agent to become ready. */
  deadlineMs: number
  /** Per-attempt Check timeout. */
  checkTimeoutMs?: number
  /** Supplies the guest console's last lines for the not-ready error. */
  consoleTail?: (lines: number) => Promise<string>
  logger?: Logger
  signal?: AbortSignal
}

const CONSOLE_TAIL_LINES = 40
/** Pause between readiness attempts. */
const RETRY_MS = 100
/** Below this much time left, another Check attempt is not worth making. */
const MIN_ATTEMPT_MS = 50

export class KataAgent {
  readonly agent: ServiceClient<typeof AgentService>
  readonly health: ServiceClient<typeof Health>

  private constructor(
    readonly client: TtrpcClient,
    readonly address: string,
  ) {
    this.agent = createServiceClient(AgentService, client)
    this.health = createServiceClient(Health, client)
  }

  /** Dial and poll grpc.Health/Check until it answers SERVING or the deadline passes. */
  static async connect(opts: ConnectOptions): Promise<KataAgent> {
    const log = opts.logger ?? nullLogger
    const started = Date.now()
    const deadline = started + opts.deadlineMs
    const checkTimeoutMs = opts.checkTimeoutMs ?? 2_000
    let lastError = 'no attempt made'
    let client: TtrpcClient | undefined
    try {
      // An attempt with only a sliver of time left would just time out and hide the real last error.
      while (deadline - Date.now() >= MIN_ATTEMPT_MS) {
        opts.signal?.throwIfAborted()
        try {
          if (!client) client = new TtrpcClient(await opts.dialer.dial(opts.signal), { logger: log })
          const remaining = Math.min(checkTimeoutMs, deadline - Date.now())
          const res = await client.call(Health, 'check', {}, { timeoutMs: remaining, signal: opts.signal })
          if (res.status === HealthCheckResponse_ServingStatus.SERVING) {
            log.info({ address: opts.dialer.address, readyMs: Date.now() - started }, 'agent ready')
            const ready = new KataAgent(client, opts.dialer.address)
            client = undefined
            return ready
          }
          lastError = `health status ${res.status}`
          await sleep(Math.min(RETRY_MS, Math.max(0, deadline - Date.now())))
        } catch (e) {
          lastError = errorMessage(e)
          // A timed-out Check leaves the connection usable (the late answer is dropped);
          // any other failure means the connection is gone, so dial again.
          if (!(e instanceof KatarefError && e.code === Code.DEADLINE_EXCEEDED) && client) {
            client.close()
            client = undefined
          }
          await sleep(Math.min(RETRY_MS, Math.max(0, deadline - Date.now())))
        }
      }
    } finally {
      client?.close()
    }
    const tail = opts.consoleTail ? await opts.consoleTail(CONSOLE_TAIL_LINES).catch((e) => `(console unavailable: ${errorMessage(e)})`) : ''
    throw new AgentNotReadyError(opts.dialer.address, opts.deadlineMs, lastError, tail)
  }

  close(): void {
    this.client.close()
  }
}

