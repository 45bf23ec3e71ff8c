import { describe, expect, it } from 'vitest'
import { DmCmd, DM_IOCTL_SIZE, encodeDmDev, decodeDmDev } from './dm-ioctl.ts'
import { FakeDmBackend, FAKE_DM_MAJOR } from './fake-dm-backend.ts'
import { FakeNodeOps } from './fake-node-ops.ts'
import { DmVerityError, Errno, errorChain } from './errors.ts'
import { parseDmverityOptions } from './verity-options.ts'
import { cleanupDmverityDevices, createDmverityDevice, destroyPartitionDmverityDevice, listVerityDevices, readDmTable, type DmVerityContext } from './verity-device.ts'

const B1 = parseDmverityOptions([
  'X-kata.dmverity.roothash=aabbccdd', 'X-kata.dmverity.hashoffset=8192', 'X-kata.dmverity.blocksize=4096',
  'X-kata.dmverity.hashsize=4096', 'X-kata.dmverity.salt=0000000000000000', 'X-kata.dmverity.no-superblock=false',
])
const NAME = 'kata-verity-vdb1-off8192-aabbccdd'
const NODE = `/dev/mapper/${NAME}`

function setup() {
  const dm = new FakeDmBackend()
  const nodes = new FakeNodeOps()
  const sleeps: number[] = []
  const ctx: DmVerityContext = { dm, nodes, sleep: async (ms) => { sleeps.push(ms) } }
  return { dm, nodes, ctx, sleeps }
}

describe('createDmverityDevice (§9.7)', () => {
  it('B18: REMOVE(deferred, ignored) → CREATE(RO) → TABLE_LOAD(RO, 1 target) → SUSPEND(0) → STATUS; mknod block 0600', async () => {
    const { dm, nodes, ctx } = setup()
    const dev = await createDmverityDevice(ctx, '/dev/vdb1', B1)
    expect(dm.calls.map((c) => [c.cmdName, c.name, c.flags, c.errno])).toEqual([
      ['DM_DEV_REMOVE', NAME, 0x20000, Errno.ENXIO],
      ['DM_DEV_CREATE', NAME, 1, 0],
      ['DM_TABLE_LOAD', NAME, 1, 0],
      ['DM_DEV_SUSPEND', NAME, 0, 0],
      ['DM_DEV_STATUS', NAME, 0, 0],
    ])
    const load = dm.calls[2]!
    expect(load.header.targetCount).toBe(1)
    expect(load.targets).toEqual([{ sectorStart: 0n, length: 16n, targetType: 'verity', params: '1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 aabbccdd 0000000000000000' }])
    expect(dev).toEqual({ name: NAME, path: NODE, major: FAKE_DM_MAJOR, minor: 0 })
    expect(nodes.nodes.get(NODE)).toEqual({ kind: 'blk', mode: 0o600, major: FAKE_DM_MAJOR, minor: 0 })
    expect(dm.devices.get(NAME)).toMatchObject({ readOnly: true, suspended: false, live: load.targets })
    expect(dm.opens).toBe(1)
    expect(dm.closes).toBe(1)
  })

  it('B19: every header is version 4.0.0, data_start 312, event_nr 0, name at offset 48', async () => {
    const { dm, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    for (const c of dm.calls) {
      expect(c.raw.length).toBe(DM_IOCTL_SIZE)
      expect([c.raw.readUInt32LE(0), c.raw.readUInt32LE(4), c.raw.readUInt32LE(8)]).toEqual([4, 0, 0])
      expect(c.raw.readUInt32LE(16)).toBe(312)
      expect(c.raw.readUInt32LE(32)).toBe(0)
      expect(c.raw.toString('latin1', 48, 48 + NAME.length + 1)).toBe(`${NAME}\0`)
    }
  })

  it('uses the major:minor DM_DEV_STATUS returns (B21 decoding)', async () => {
    const { dm, nodes, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb2', { ...B1, hash: 'aa' })
    const dev = await createDmverityDevice(ctx, '/dev/vdb1', B1)
    expect(dev.minor).toBe(1)
    expect(decodeDmDev(encodeDmDev(FAKE_DM_MAJOR, 1))).toEqual({ major: 253, minor: 1 })
    expect(nodes.nodes.get(NODE)?.minor).toBe(1)
    expect(dm.devices.size).toBe(2)
  })

  it('B22: a node already present is removed then recreated', async () => {
    const { nodes, ctx } = setup()
    nodes.addNode(NODE, { major: 8, minor: 16 })
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    expect(nodes.log).toEqual([`unlink ${NODE}`, `mknod ${NODE} b 253:0 0600`])
    expect(nodes.nodes.get(NODE)).toMatchObject({ major: 253, minor: 0 })
  })

  it('a stale unopened same-named device is removed before CREATE', async () => {
    const { dm, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    expect(dm.calls[5]).toMatchObject({ cmdName: 'DM_DEV_REMOVE', errno: 0 })
    expect(dm.devices.size).toBe(1)
  })

  it('upstream-gap G6 (mirrored): a still-open same-named device is only marked, then CREATE fails EBUSY', async () => {
    const { dm, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    dm.openDevice(NAME)
    const e = await createDmverityDevice(ctx, '/dev/vdb1', B1).catch((x) => x)
    expect(e).toBeInstanceOf(DmVerityError)
    expect(e.step).toBe('create')
    expect(errorChain(e).join(': ')).toMatch(/DM_DEV_CREATE .*EBUSY/)
  })

  it('missing control node fails before name validation and before any ioctl', async () => {
    const { dm, ctx } = setup()
    dm.openErrno = Errno.ENOENT
    const longName = { ...B1 }
    const e = await createDmverityDevice(ctx, `/dev/${'x'.repeat(200)}`, longName).catch((x) => x)
    expect(e.step).toBe('control')
    expect(dm.calls).toEqual([])
  })

  it('invalid table values are rejected before the control node is even opened', async () => {
    const { dm, ctx } = setup()
    const e = await createDmverityDevice(ctx, '/dev/vdb1', { ...B1, hash: 'aa bb' }).catch((x) => x)
    expect(e.step).toBe('validate')
    expect(e.cause.code).toBe(3)
    expect(dm.opens).toBe(0)
  })

  it('G8 name too long: rejected before any ioctl', async () => {
    const { dm, ctx } = setup()
    const e = await createDmverityDevice(ctx, `/dev/${'x'.repeat(200)}`, B1).catch((x) => x)
    expect(e.step).toBe('validate')
    expect(dm.calls).toEqual([])
    expect(dm.closes).toBe(1)
  })

  it('G7 fixed: the node is always made by mknod (no wait for udev)', async () => {
    const { nodes, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    expect(nodes.log).toContain(`mknod ${NODE} b 253:0 0600`)
  })
})

describe('G2 fixed: a failure after DM_DEV_CREATE removes the half-made device', () => {
  it.each([
    ['table-load', DmCmd.TABLE_LOAD],
    ['resume', DmCmd.DEV_SUSPEND],
    ['status', DmCmd.DEV_STATUS],
  ] as const)('G2: failure at %s', async (step, cmd) => {
    const { dm, nodes, ctx } = setup()
    dm.failOn({ cmd, errno: Errno.EINVAL })
    const e = await createDmverityDevice(ctx, '/dev/vdb1', B1).catch((x) => x)
    expect(e).toBeInstanceOf(DmVerityError)
    expect(e.step).toBe(step)
    expect(e.message).toBe(`failed to create dm-verity device ${NAME} (step ${step})`)
    expect(dm.calls.at(-1)).toMatchObject({ cmdName: 'DM_DEV_REMOVE', flags: 0x20000, errno: 0 })
    expect(dm.devices.size).toBe(0)
    expect(nodes.nodes.size).toBe(0)
  })
  it('G2: failure at mknod', async () => {
    const { dm, nodes, ctx } = setup()
    nodes.failOn('mknod', NODE, Errno.EPERM)
    const e = await createDmverityDevice(ctx, '/dev/vdb1', B1).catch((x) => x)
    expect(e.step).toBe('mknod')
    expect(errorChain(e)).toContain(`failed to mknod block device ${NODE}`)
    expect(dm.devices.size).toBe(0)
  })
  it('G2: failure removing a stale node', async () => {
    const { dm, nodes, ctx } = setup()
    nodes.addNode(NODE)
    nodes.failOn('unlink', NODE, Errno.EPERM)
    const e = await createDmverityDevice(ctx, '/dev/vdb1', B1).catch((x) => x)
    expect(errorChain(e)).toContain(`failed to remove stale device node ${NODE}`)
    expect(dm.devices.size).toBe(0)
  })
  it('failure at create leaves nothing and does not try to remove', async () => {
    const { dm, ctx } = setup()
    dm.failOn({ cmd: DmCmd.DEV_CREATE, errno: Errno.ENOMEM })
    const e = await createDmverityDevice(ctx, '/dev/vdb1', B1).catch((x) => x)
    expect(e.step).toBe('create')
    expect(dm.callSummary()).toEqual([`DM_DEV_REMOVE(${NAME}, 0x20000) → 6`, `DM_DEV_CREATE(${NAME}, 0x1) → 12`])
  })
  it('a rollback failure is reported in the error context, original cause kept', async () => {
    const { dm, ctx } = setup()
    dm.failOn({ cmd: DmCmd.TABLE_LOAD }).failOn({ cmd: DmCmd.DEV_REMOVE, errno: Errno.EIO })
    const e = await createDmverityDevice(ctx, '/dev/vdb1', B1).catch((x) => x)
    expect(e.step).toBe('table-load')
    expect(e.context.rollbackErrors).toHaveLength(1)
  })
})

describe('destroy and cleanup (§10)', () => {
  it('B23: destroy /dev/mapper/X → REMOVE(X, 0x00020000), then node unlinked', async () => {
    const { dm, nodes, ctx } = setup()
    const dev = await createDmverityDevice(ctx, '/dev/vdb1', B1)
    dm.calls.length = 0
    await destroyPartitionDmverityDevice(ctx, dev.path)
    expect(dm.calls.map((c) => [c.cmdName, c.name, c.flags, c.eventNr])).toEqual([['DM_DEV_REMOVE', NAME, 0x00020000, 0]])
    expect(nodes.nodes.has(NODE)).toBe(false)
    expect(dm.devices.size).toBe(0)
  })
  it('B24: REMOVE fails → error returned, node kept', async () => {
    const { dm, nodes, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    dm.failOn({ cmd: DmCmd.DEV_REMOVE, errno: Errno.EIO })
    const e = await destroyPartitionDmverityDevice(ctx, NODE).catch((x) => x)
    expect(errorChain(e).slice(0, 2)).toEqual(['Failed to destroy dm-verity device', `remove DmverityDevice ${NAME}`])
    expect(nodes.nodes.has(NODE)).toBe(true)
  })
  it('B24: batch cleanup continues after a failure', async () => {
    const { dm, ctx } = setup()
    const paths: string[] = []
    for (const p of ['/dev/vdb1', '/dev/vdb2', '/dev/vdb3']) paths.push((await createDmverityDevice(ctx, p, B1)).path)
    dm.failOn({ cmd: DmCmd.DEV_REMOVE, name: /vdb2/, errno: Errno.EIO })
    const failures = await cleanupDmverityDevices(ctx, paths)
    expect(failures.map((f) => f.path)).toEqual([paths[1]])
    expect([...dm.devices.keys()]).toEqual([paths[1]!.slice('/dev/mapper/'.length)])
  })
  it('B25: cleanup [v0, v1, v2] removes v2, v1, v0', async () => {
    const { dm, ctx } = setup()
    const paths: string[] = []
    for (const p of ['/dev/vdb1', '/dev/vdb2', '/dev/vdb3']) paths.push((await createDmverityDevice(ctx, p, B1)).path)
    dm.calls.length = 0
    await cleanupDmverityDevices(ctx, paths)
    expect(dm.calls.map((c) => c.name)).toEqual([2, 1, 0].map((i) => paths[i]!.slice('/dev/mapper/'.length)))
  })
  it('an open (mounted) device is deferred: REMOVE succeeds, device goes at last close', async () => {
    const { dm, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    dm.openDevice(NAME)
    await destroyPartitionDmverityDevice(ctx, NODE)
    expect(dm.devices.get(NAME)?.deferredRemove).toBe(true)
    dm.closeDevice(NAME)
    expect(dm.devices.size).toBe(0)
  })
  it('REMOVE is retried on EBUSY: 5 attempts, 200 ms apart', async () => {
    const { dm, ctx, sleeps } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    dm.failOn({ cmd: DmCmd.DEV_REMOVE, errno: Errno.EBUSY, times: 4 })
    await destroyPartitionDmverityDevice(ctx, NODE)
    expect(sleeps).toEqual([200, 200, 200, 200])
    expect(dm.devices.size).toBe(0)
  })
  it('unknown name fails with ENXIO', async () => {
    const { ctx } = setup()
    const e = await destroyPartitionDmverityDevice(ctx, '/dev/mapper/nope').catch((x) => x)
    expect(errorChain(e).join(': ')).toMatch(/ENXIO/)
  })
  it('listVerityDevices finds kata-verity-* devices only', async () => {
    const { dm, ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    const c = await dm.openControl()
    const { DmClient } = await import('./dm-client.ts')
    await new DmClient(c).deviceCreate('other', { flags: 0, udevFlags: 0 })
    expect(await listVerityDevices(ctx)).toEqual([NODE])
  })
})

describe('readDmTable', () => {
  it('reads the live table back', async () => {
    const { ctx } = setup()
    await createDmverityDevice(ctx, '/dev/vdb1', B1)
    expect(await readDmTable(ctx, NAME, { table: true })).toEqual(['0 16 verity 1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 aabbccdd 0000000000000000'])
  })
})
