import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DeadlineError } from '../../../../types/errors.ts'
import { connectQmpSocket } from './qmp-socket.ts'
import { FAKE_GREETING } from './fake-qmp-peer.ts'

describe('connectQmpSocket (spec §1)', () => {
  it('retries until the socket appears, then negotiates capabilities', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kataref-qmpsock-'))
    const sock = path.join(dir, 'qmp.sock')
    const seen: string[] = []
    const server = net.createServer((c) => {
      c.write(JSON.stringify(FAKE_GREETING) + '\r\n')
      c.on('data', (d) => {
        for (const line of d.toString().split('\n').filter(Boolean)) {
          const m = JSON.parse(line) as { execute: string; id: string }
          seen.push(m.execute)
          c.write(JSON.stringify({ return: {}, id: m.id }) + '\r\n')
        }
      })
    })
    setTimeout(() => server.listen(sock), 120)
    const qmp = await connectQmpSocket(sock, { readyTimeoutMs: 5000 })
    expect(seen).toEqual(['qmp_capabilities'])
    qmp.close()
    server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('gives up with a deadline error naming the socket path', async () => {
    const err = await connectQmpSocket('/nonexistent/qmp.sock', { readyTimeoutMs: 200 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeadlineError)
    expect((err as Error).message).toMatch(/^timed out waiting for QMP ready on \/nonexistent\/qmp.sock/)
  })
})
