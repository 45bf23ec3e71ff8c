import { describe, expect, it } from 'vitest'
import { DeadlineError } from '../../../../types/errors.ts'
import { FakeQmpPeer } from './fake-qmp-peer.ts'
import { QmpClient } from './qmp-client.ts'
import { QmpClosedError, QmpCommandError } from './qmp-errors.ts'
import { buildRightsControl } from './fd-passing.ts'
import { isDeviceDeleted } from './qmp-types.ts'
import { LineReader } from './line-reader.ts'

async function connected(peer: FakeQmpPeer, opts = {}): Promise<QmpClient> {
  return QmpClient.connect(peer.clientSide, { fdSender: peer.fdSender, ...opts })
}

describe('QmpClient handshake (spec §1)', () => {
  it('reads the greeting and sends qmp_capabilities without enable', async () => {
    const peer = new FakeQmpPeer()
    const c = await connected(peer)
    expect(c.greeting.QMP.version.qemu.major).toBe(7)
    expect(peer.received).toHaveLength(1)
    expect(peer.received[0]!.execute).toBe('qmp_capabilities')
    expect(peer.received[0]!.arguments).toBeUndefined()
    peer.assertDone()
    c.close()
  })

  it('fails with a deadline error when no greeting arrives', async () => {
    const peer = new FakeQmpPeer({ greeting: null })
    await expect(QmpClient.connect(peer.clientSide, { handshakeTimeoutMs: 50 })).rejects.toBeInstanceOf(DeadlineError)
  })

  it('rejects impossible options at construction', async () => {
    const peer = new FakeQmpPeer()
    await expect(QmpClient.connect(peer.clientSide, { commandTimeoutMs: 0 })).rejects.toThrow(/commandTimeoutMs/)
  })
})

describe('QmpClient commands', () => {
  it('returns `return`, carries class and desc on error', async () => {
    const peer = new FakeQmpPeer()
      .expect({ execute: 'query-version', returns: { qemu: { major: 7 } } })
      .expect({ execute: 'device_del', args: { id: 'drive-9' }, error: { class: 'DeviceNotFound', desc: "Device 'drive-9' not found" } })
    const c = await connected(peer)
    await expect(c.execute('query-version')).resolves.toEqual({ qemu: { major: 7 } })
    const err = await c.execute('device_del', { id: 'drive-9' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QmpCommandError)
    expect((err as QmpCommandError).errorClass).toBe('DeviceNotFound')
    expect((err as QmpCommandError).desc).toBe("Device 'drive-9' not found")
    expect((err as Error).message).toBe("QMP device_del: DeviceNotFound: Device 'drive-9' not found")
    peer.assertDone()
    c.close()
  })

  it('keeps one command in flight at a time, in call order', async () => {
    const peer = new FakeQmpPeer()
      .expect({ execute: 'a', replyDelayMs: 30, returns: 1 })
      .expect({ execute: 'b', returns: 2 })
      .expect({ execute: 'c', returns: 3 })
    const c = await connected(peer)
    const results = await Promise.all([c.execute('a'), c.execute('b'), c.execute('c')])
    expect(results).toEqual([1, 2, 3])
    // b was not sent before a was answered
    expect(peer.received[2]!.at).toBeGreaterThanOrEqual(peer.received[1]!.at + 25)
    peer.assertDone()
    c.close()
  })

  it('per-command deadline; a late answer is dropped and the next command still works', async () => {
    const peer = new FakeQmpPeer()
      .expect({ execute: 'slow', replyDelayMs: 80, returns: 'late' })
      .expect({ execute: 'next', returns: 'ok' })
    const c = await connected(peer)
    const err = await c.execute('slow', undefined, { timeoutMs: 20 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeadlineError)
    expect((err as Error).message).toContain('QMP slow')
    await new Promise((r) => setTimeout(r, 100))
    await expect(c.execute('next')).resolves.toBe('ok')
    c.close()
  })

  it('an aborted signal cancels the command', async () => {
    const peer = new FakeQmpPeer().expect({ execute: 'hang', noReply: true })
    const c = await connected(peer)
    const ac = new AbortController()
    const p = c.execute('hang', undefined, { signal: ac.signal })
    setTimeout(() => ac.abort(), 10)
    await expect(p).rejects.toThrow(/aborted/)
    c.close()
  })

  it('fds given to execute go through the fdSender before the command', async () => {
    const peer = new FakeQmpPeer().expect({
      execute: 'add-fd',
      args: { opaque: 'kata-block:drive-0:block-source' },
      returns: { 'fdset-id': 0, fd: 25 },
    })
    const c = await connected(peer)
    await expect(c.execute('add-fd', { opaque: 'kata-block:drive-0:block-source' }, { fds: [7] })).resolves.toEqual({ 'fdset-id': 0, fd: 25 })
    expect(peer.received[1]!.fds).toEqual([7])
    c.close()
  })

  it('fails pending work with QmpClosedError when the peer goes away', async () => {
    const peer = new FakeQmpPeer().expect({ execute: 'hang', noReply: true })
    const c = await connected(peer)
    const p = c.execute('hang')
    const w = c.waitForEvent(() => true)
    setTimeout(() => peer.close(), 10)
    await expect(p).rejects.toBeInstanceOf(QmpClosedError)
    await expect(w).rejects.toBeInstanceOf(QmpClosedError)
    await expect(c.execute('x')).rejects.toBeInstanceOf(QmpClosedError)
  })
})

describe('QmpClient events (gap §12.6 fixed: unmatched events are kept)', () => {
  it('upstream-gap-12.6: a waiter takes only its event; every other event stays queued', async () => {
    const peer = new FakeQmpPeer().expect({
      execute: 'device_del',
      args: { id: 'drive-3' },
      events: [
        { event: { event: 'DEVICE_DELETED', data: { path: '/machine/peripheral/drive-3/virtio-backend' } } },
        { event: { event: 'DEVICE_DELETED', data: { device: 'drive-7', path: '/machine/peripheral/drive-7' } }, delayMs: 5 },
        { event: { event: 'BLOCK_JOB_READY', data: { device: 'job0' } } },
        { event: { event: 'DEVICE_DELETED', data: { device: 'drive-3', path: '/machine/peripheral/drive-3' } }, delayMs: 5 },
      ],
    })
    const c = await connected(peer)
    await c.execute('device_del', { id: 'drive-3' })
    const ev = await c.waitForEvent(isDeviceDeleted('drive-3'), { timeoutMs: 1000 })
    expect(ev.data).toEqual({ device: 'drive-3', path: '/machine/peripheral/drive-3' })
    expect(c.pendingEvents().map((e) => [e.event, e.data?.device ?? e.data?.path])).toEqual([
      ['DEVICE_DELETED', '/machine/peripheral/drive-3/virtio-backend'],
      ['DEVICE_DELETED', 'drive-7'],
      ['BLOCK_JOB_READY', 'job0'],
    ])
    // a later waiter for drive-7 is served from the queue
    await expect(c.waitForEvent(isDeviceDeleted('drive-7'), { timeoutMs: 10 })).resolves.toMatchObject({ data: { device: 'drive-7' } })
    expect(c.drainEvents()).toHaveLength(2)
    c.close()
  })

  it('waitForEvent times out with DeadlineError and can be aborted', async () => {
    const peer = new FakeQmpPeer()
    const c = await connected(peer)
    await expect(c.waitForEvent(isDeviceDeleted('x'), { timeoutMs: 20 })).rejects.toBeInstanceOf(DeadlineError)
    const ac = new AbortController()
    const p = c.waitForEvent(isDeviceDeleted('x'), { signal: ac.signal })
    ac.abort()
    await expect(p).rejects.toThrow(/aborted/)
    peer.emit({ event: 'DEVICE_DELETED', data: { device: 'x' } })
    await new Promise((r) => setTimeout(r, 5))
    expect(c.pendingEvents()).toHaveLength(1)
    c.close()
  })

  it('events that arrive while a command is in flight are queued, not taken as its response', async () => {
    const peer = new FakeQmpPeer().expect({ execute: 'query-version', eventsBefore: [{ event: 'RESUME' }], returns: { v: 1 } })
    const c = await connected(peer)
    await expect(c.execute('query-version')).resolves.toEqual({ v: 1 })
    expect(c.pendingEvents().map((e) => e.event)).toEqual(['RESUME'])
    c.close()
  })
})

describe('framing and fd control buffer', () => {
  it('LineReader splits CRLF lines across chunks and multibyte characters', () => {
    const r = new LineReader()
    const bytes = Buffer.from('{"a":"é"}\r\n{"b":1}\n')
    const out = [...r.push(bytes.subarray(0, 7)), ...r.push(bytes.subarray(7))]
    expect(out).toEqual(['{"a":"é"}', '{"b":1}'])
  })

  it('SCM_RIGHTS control buffer has LP64 cmsghdr layout', () => {
    const b = buildRightsControl([5, 6])
    expect(b.length).toBe(24)
    expect(b.readBigUInt64LE(0)).toBe(24n)
    expect([b.readInt32LE(8), b.readInt32LE(12), b.readInt32LE(16), b.readInt32LE(20)]).toEqual([1, 1, 5, 6])
    expect(buildRightsControl([5]).length).toBe(24)
    expect(buildRightsControl([5]).readBigUInt64LE(0)).toBe(20n)
  })
})
