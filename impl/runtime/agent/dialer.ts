// How the runtime reaches the agent. Transport stays pluggable (protocols.md §2.2): a plain unix
// socket (our QEMU virtio-serial chardev, or host-mode agents) and hybrid vsock (`CONNECT <port>`).
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { Code, DeadlineError, KatarefError } from '../../types/errors.ts'

export interface AgentDialer {
  /** A human-readable address for errors and logs (`unix:///…`, `hvsock://…:1024`). */
  readonly address: string
  dial(signal?: AbortSignal): Promise<Duplex>
}

export class DialError extends KatarefError {}

function connectUnix(path: string, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ path, signal })
    sock.once('connect', () => {
      sock.removeListener('error', reject)
      resolve(sock)
    })
    sock.once('error', reject)
  })
}

export function unixDialer(path: string): AgentDialer {
  return { address: `unix://${path}`, dial: (signal) => connectUnix(path, signal) }
}

/** Hybrid vsock (Firecracker, Cloud Hypervisor): send `CONNECT <port>\n`, accept a reply line containing `OK`. */
export function hybridVsockDialer(path: string, port = 1024, handshakeTimeoutMs = 10_000): AgentDialer {
  const address = `hvsock://${path}:${port}`
  return {
    address,
    async dial(signal) {
      const sock = await connectUnix(path, signal)
      try {
        const line = await readLine(sock, handshakeTimeoutMs)
        if (!line.includes('OK')) throw new DialError(`${address}: handshake refused: ${JSON.stringify(line)}`, Code.UNAVAILABLE, { address })
        return sock
      } catch (e) {
        sock.destroy()
        throw e
      }

      function readLine(s: Socket, timeoutMs: number): Promise<string> {
        s.write(`CONNECT ${port}\n`)
        return new Promise((resolve, reject) => {
          let buf = Buffer.alloc(0)
          const timer = setTimeout(() => done(new DeadlineError(`${address}: CONNECT handshake`, timeoutMs)), timeoutMs)
          const onData = (d: Buffer) => {
            buf = Buffer.concat([buf, d])
            const nl = buf.indexOf(0x0a)
            if (nl < 0) return
            // Bytes after the newline already belong to ttrpc: give them back to the stream.
            if (nl + 1 < buf.length) s.unshift(buf.subarray(nl + 1))
            done(undefined, buf.subarray(0, nl).toString('utf8'))
          }
          const onEnd = () => done(new DialError(`${address}: closed during CONNECT handshake`, Code.UNAVAILABLE, { address }))
          function done(err?: Error, line?: string) {
            clearTimeout(timer)
            s.removeListener('data', onData)
            s.removeListener('end', onEnd)
            s.removeListener('error', onEnd)
            s.pause()
            if (err) reject(err)
            else resolve(line!)
          }
          s.on('data', onData)
          s.once('end', onEnd)
          s.once('error', onEnd)
        })
      }
    },
  }
}
