// Against a real, paused QEMU (`-S`, no kernel, TCG): QMP handshake, fd passing with add-fd,
// blockdev-add, device_add, rollback, scsi-hd unplug (completes without a guest).
// Each test starts its own QEMU and kills it at the end; no guest is booted.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { connectQmpSocket } from '../qmp/qmp-socket.ts'
import type { QmpClient } from '../qmp/qmp-client.ts'
import { QmpCommandError } from '../qmp/qmp-errors.ts'
import { BlockFdsets } from './block-fdsets.ts'
import { hotplugBlockDevice } from './block-hotplug.ts'
import { hotunplugBlockDevice } from './block-unplug.ts'
import type { BlockHotplugContext } from './hotplug-context.ts'
import { PciBridgeSlots, formatPciAddr } from './pci-slots.ts'

const QEMU = 'qemu-system-x86_64'

interface PausedQemu {
  qmp: QmpClient
  proc: ChildProcess
  dir: string
}

const running: PausedQemu[] = []

async function startPausedQemu(extra: string[]): Promise<PausedQemu> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kataref-qmp-'))
  const sock = path.join(dir, 'qmp.sock')
  const proc = spawn(QEMU, ['-machine', 'q35,accel=tcg', '-nodefaults', '-nographic', '-S', '-qmp', `unix:${sock},server=on,wait=off`, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const entry: PausedQemu = { qmp: undefined as unknown as QmpClient, proc, dir }
  running.push(entry)
  try {
    entry.qmp = await connectQmpSocket(sock, { readyTimeoutMs: 20_000 })
  } catch (e) {
    throw new Error(`QEMU did not come up: ${stderr}`, { cause: e })
  }
  return entry
}

afterEach(async () => {
  for (const q of running.splice(0)) {
    q.qmp?.close()
    if (q.proc.exitCode === null && q.proc.signalCode === null) {
      const exited = new Promise((r) => q.proc.once('exit', r))
      q.proc.kill('SIGKILL')
      await exited
    }
    fs.rmSync(q.dir, { recursive: true, force: true })
  }
})

/**
 * QEMU 7.2 closes a removed fdset entry only while the VM runs (`monitor_fdset_cleanup` checks
 * `runstate_is_running()`), so tests that check `query-fdsets` after `remove-fd` let the
 * firmware run (no boot device: it idles). Nothing else needs it.
 */
async function runFirmware(qmp: QmpClient): Promise<void> {
  await qmp.execute('cont')
}

function ctxFor(qmp: QmpClient, slots = new PciBridgeSlots(1)): BlockHotplugContext {
  return { qmp, slots, fdsets: new BlockFdsets() }
}

async function nodeNames(qmp: QmpClient): Promise<string[]> {
  const nodes = await qmp.execute<{ 'node-name': string }[]>('query-named-block-nodes')
  return nodes.map((n) => n['node-name'])
}

function rawFile(dir: string): string {
  const p = path.join(dir, 'disk.raw')
  fs.writeFileSync(p, Buffer.alloc(1 << 20))
  return p
}

describe('real paused QEMU (TCG, no guest)', () => {
  it('capabilities; virtio-scsi hotplug by add-fd fd passing (row 19); unplug without a guest (row 25); unknown id (row 28)', async () => {
    const q = await startPausedQemu(['-device', 'virtio-scsi-pci,id=scsi0,bus=pcie.0,addr=3'])
    expect(q.qmp.greeting.QMP.version.qemu).toMatchObject({ major: 7, minor: 2 })
    await runFirmware(q.qmp)
    const ctx = ctxFor(q.qmp)
    const disk = rawFile(q.dir)

    // getfd: one fd by SCM_RIGHTS under a name, then closefd by that name
    const fd = fs.openSync(disk, 'r')
    await q.qmp.execute('getfd', { fdname: 'kataref-test' }, { fds: [fd] })
    fs.closeSync(fd)
    await q.qmp.execute('closefd', { fdname: 'kataref-test' })
    await expect(q.qmp.execute('closefd', { fdname: 'kataref-test' })).rejects.toThrow(/File descriptor named 'kataref-test' not found/)

    await expect(hotplugBlockDevice(ctx, { driver: 'virtio-scsi', index: 3, pathOnHost: disk, aio: 'io_uring', direct: false, readOnly: false, noDrop: false })).resolves.toEqual({
      scsiAddr: '0:3',
    })
    const fdsets = await q.qmp.execute<{ 'fdset-id': number; fds: { opaque?: string }[] }[]>('query-fdsets')
    expect(fdsets.flatMap((s) => s.fds.map((f) => f.opaque))).toEqual(['kata-block:drive-3:block-source'])
    expect(ctx.fdsets.get('drive-3')).toEqual([fdsets[0]!['fdset-id']])
    const nodes = await q.qmp.execute<{ 'node-name': string; file: string; ro: boolean }[]>('query-named-block-nodes')
    const node = nodes.find((n) => n['node-name'] === 'drive-3')!
    expect(node.file).toBe(`/dev/fdset/${fdsets[0]!['fdset-id']}`)
    expect(node.ro).toBe(false)

    // blockdev-del of an attached node fails (spec §5 QEMU facts)
    await expect(q.qmp.execute('blockdev-del', { 'node-name': 'drive-3' })).rejects.toThrow(/Node drive-3 is in use/)

    await hotunplugBlockDevice(ctx, 'virtio-scsi', 3)
    expect(await nodeNames(q.qmp)).not.toContain('drive-3')
    expect(await q.qmp.execute('query-fdsets')).toEqual([])
    expect(ctx.fdsets.has('drive-3')).toBe(false)

    const err = await hotunplugBlockDevice(ctx, 'virtio-scsi', 9).then(() => new Error('expected a failure'), (e: Error) => e)
    expect(err.message).toBe("device_del for block device drive-9: QMP device_del: DeviceNotFound: Device 'drive-9' not found")
  })

  it('device_add on a missing bridge → blockdev-del rollback: node gone from query-named-block-nodes, fdset removed (row 22)', async () => {
    const q = await startPausedQemu([])
    await runFirmware(q.qmp)
    const slots = new PciBridgeSlots(0)
    slots.record('pci-bridge-7', 30, 'placeholder')
    const ctx = ctxFor(q.qmp, slots)
    const disk = rawFile(q.dir)
    const err = await hotplugBlockDevice(ctx, { driver: 'virtio-blk-pci', index: 0, pathOnHost: disk, aio: 'threads', direct: false, readOnly: true, noDrop: false }).then(
      () => new Error('expected a failure'),
      (e: Error) => e,
    )
    expect(err.message).toBe("device_add QMP device_add: GenericError: Bus 'pci-bridge-7' not found")
    expect(findQmpClass(err)).toBe('GenericError')
    expect(await nodeNames(q.qmp)).not.toContain('drive-0')
    expect(await q.qmp.execute('query-fdsets')).toEqual([])
    expect(ctx.fdsets.has('drive-0')).toBe(false)
  })

  it('upstream-gap-12.1 trigger: addr "10" (slot 10 in decimal) lands at slot 0x10; hex "0a" lands at 10; "30" is refused', async () => {
    const q = await startPausedQemu(['-device', 'pci-bridge,id=pci-bridge-0,bus=pcie.0,addr=2,chassis_nr=1,shpc=off'])
    const disk = rawFile(q.dir)
    for (const n of [0, 1]) {
      await q.qmp.execute('blockdev-add', { driver: 'raw', 'node-name': `drive-${n}`, 'read-only': true, file: { driver: 'file', filename: disk, 'read-only': true } })
    }
    const devfn = async (id: string): Promise<number> => q.qmp.execute<number>('qom-get', { path: `/machine/peripheral/${id}`, property: 'addr' })

    await q.qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'drive-0', drive: 'drive-0', bus: 'pci-bridge-0', addr: formatPciAddr(10, 'upstream-decimal') })
    expect((await devfn('drive-0')) >> 3).toBe(16)

    await q.qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'drive-1', drive: 'drive-1', bus: 'pci-bridge-0', addr: formatPciAddr(10) })
    expect((await devfn('drive-1')) >> 3).toBe(10)

    const err = await q.qmp
      .execute('device_add', { driver: 'virtio-blk-pci', id: 'drive-2', drive: 'drive-1', bus: 'pci-bridge-0', addr: formatPciAddr(30, 'upstream-decimal') })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QmpCommandError)
    expect((err as QmpCommandError).desc).toContain("doesn't take value '30'")
  })
})

function findQmpClass(e: Error): unknown {
  return (e as unknown as { context: Record<string, unknown> }).context.qmpClass
}
