// Connecting to QEMU's QMP unix socket (spec §1): each attempt connects, reads the greeting
// and negotiates capabilities; failed attempts are retried every 50 ms until a 50 s deadline.
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeadlineError, errorMessage } from '../../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../../types/logger.ts'
import { socketFdSender } from './fd-passing.ts'
import { QmpClient, type QmpClientOptions } from './qmp-client.ts'

export interface ConnectQmpOptions extends Omit<QmpClientOptions, 'fdSender'> {
  /** Whole-connect deadline (default 50 000 ms). */
  readyTimeoutMs?: number
  /** Pause between attempts (default 50 ms). */
  retryIntervalMs?: number
  signal?: AbortSignal
}

export const QMP_READY_TIMEOUT_MS = 50_000
export const QMP_RETRY_INTERVAL_MS = 50

/** Connect to `socketPath` with retries; fd passing is wired to the socket. */
export async function connectQmpSocket(socketPath: string, opts: ConnectQmpOptions = {}): Promise<QmpClient> {
  const log = (opts.logger ?? nullLogger).child({ qmpSocket: socketPath })
  const readyMs = opts.readyTimeoutMs ?? QMP_READY_TIMEOUT_MS
  const retryMs = opts.retryIntervalMs ?? QMP_RETRY_INTERVAL_MS
  const deadline = Date.now() + readyMs
  let last: unknown
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new Error(`connect to QMP socket ${socketPath}: aborted`, { cause: opts.signal.reason })
    try {
      const sock = await openUnix(socketPath)
      try {
        return await QmpClient.connect(sock, { ...opts, fdSender: socketFdSender(sock) })
      } catch (e) {
        sock.destroy()
        throw e
      }
    } catch (e) {
      last = e
      log.debug({ attempt, err: errorMessage(e) }, 'QMP connect attempt failed')
    }
    if (Date.now() + retryMs > deadline) break
    await sleep(retryMs)
  }
  throw new DeadlineError(`timed out waiting for QMP ready on ${socketPath}`, readyMs, { socketPath }, { cause: last })
}

function openUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path })
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}
