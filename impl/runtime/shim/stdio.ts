// stdio between containerd's FIFOs and the agent (protocols.md §3.8 "FIFO handling"):
// stdout/stderr: loop Read{Stdout,Stderr} until the empty answer (EOF), write each chunk to the FIFO
// (opened O_RDWR: never blocks, still a valid writer), then close it so the reader sees EOF.
// stdin: the FIFO opened O_RDONLY|O_NONBLOCK and read through a libuv pipe (epoll: no thread is
// parked and Linux reports no hang-up before a writer has come and gone); each chunk goes to
// WriteStdin, EOF becomes CloseStdin.
import { constants, openSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { Socket } from 'node:net'
import { errorMessage } from '../../types/errors.ts'
import type { Logger } from '../../types/logger.ts'

export const READ_CHUNK = 32 * 1024

/**
 * Copies one output stream to `fifo` (or drains it when `fifo` is empty, so the process never
 * blocks on a full pipe). Resolves once EOF was read and the FIFO is closed; never rejects.
 */
export async function copyOutput(read: (len: number) => Promise<Uint8Array>, fifo: string, log: Logger, what: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined
  try {
    if (fifo) fh = await open(fifo, constants.O_RDWR)
  } catch (e) {
    log.warn({ fifo, err: errorMessage(e) }, `open ${what} FIFO failed; output is discarded`)
  }
  try {
    for (;;) {
      const data = await read(READ_CHUNK)
      if (data.length === 0) break
      if (fh) {
        let off = 0
        while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten
      }
    }
  } catch (e) {
    // The process is gone from the agent (or the agent is): nothing more to copy.
    log.debug({ err: errorMessage(e) }, `${what} copy ended`)
  } finally {
    await fh?.close().catch(() => {})
  }
}

export interface StdinRelay {
  /** Stops reading and closes the FIFO (CloseIO, Delete). */
  close(): void
}

/** Relays a stdin FIFO to the process. `onEof` runs once (CloseStdin). */
export function relayStdin(fifo: string, write: (data: Uint8Array) => Promise<unknown>, onEof: () => Promise<unknown>, log: Logger): StdinRelay {
  let sock: Socket | undefined
  let done = false
  const finish = (): void => {
    if (done) return
    done = true
    sock?.destroy()
    onEof().catch((e) => log.debug({ err: errorMessage(e) }, 'CloseStdin failed'))
  }
  try {
    const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
    sock = new Socket({ fd, readable: true, writable: false })
  } catch (e) {
    log.warn({ fifo, err: errorMessage(e) }, 'open stdin FIFO failed')
    return { close: () => {} }
  }
  let chain: Promise<unknown> = Promise.resolve()
  sock.on('data', (d: Buffer) => {
    sock!.pause()
    chain = chain
      .then(() => write(d))
      .then(() => sock!.resume())
      .catch((e) => {
        log.debug({ err: errorMessage(e) }, 'WriteStdin failed; stdin relay stops')
        done = true
        sock!.destroy()
      })
  })
  sock.on('end', () => void chain.then(finish))
  sock.on('error', (e) => {
    log.debug({ err: errorMessage(e) }, 'stdin FIFO error')
    void chain.then(finish)
  })
  return {
    close: () => {
      if (done) return
      done = true
      sock?.destroy()
    },
  }
}
