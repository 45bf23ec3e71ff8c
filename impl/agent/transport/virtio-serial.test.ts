// VirtioSerialChannel session semantics, with a regular file standing in for /dev/vportNpM (a read
// at its end returns 0 bytes, as the port does while no host is connected). The case that matters
// for VM templates: the template's host went away before the snapshot, and in a clone a new host
// (a new QEMU chardev socket) connects; the agent must start a fresh session and serve it.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { nullLogger } from '../../types/logger.ts'
import { VirtioSerialChannel } from './virtio-serial.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await sleep(5)
  }
}

describe('VirtioSerialChannel (fake port: a regular file)', () => {
  it('EOF ends the session and reading goes on; bytes from a new host start a fresh session (template clone)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'kataref-vport-'))
    dirs.push(d)
    const port = join(d, 'vport1p1')
    writeFileSync(port, 'first-host')
    const ch = new VirtioSerialChannel(port, { logger: nullLogger, idleBackoffMs: 5 })
    const sessions: { s: Duplex; data: string; ended: boolean }[] = []
    const running = ch.run((s) => {
      const rec = { s, data: '', ended: false }
      sessions.push(rec)
      s.on('data', (c: Buffer) => (rec.data += c.toString()))
      s.on('end', () => (rec.ended = true))
      s.on('error', () => {})
    })
    await until(() => sessions.length === 1 && sessions[0]!.ended)
    expect(sessions[0]!.data).toBe('first-host')

    // Idle reads (EOF) for a while: no new session appears.
    await sleep(50)
    expect(sessions).toHaveLength(1)

    // A new host connects and sends.
    appendFileSync(port, 'second-host')
    await until(() => sessions.length === 2 && sessions[1]!.data === 'second-host')
    expect(sessions[1]!.s).not.toBe(sessions[0]!.s)
    ch.stop()
    await running
    expect(sessions[1]!.ended).toBe(true)
  })
})
