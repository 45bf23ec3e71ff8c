import { describe, expect, it } from 'vitest'
import {
  DM_DEV_CREATE, DM_DEV_REMOVE, DM_DEV_STATUS, DM_DEV_SUSPEND, DM_IOCTL_SIZE, DM_LIST_DEVICES, DM_TABLE_LOAD, DM_TABLE_STATUS,
  DM_VERSION, DmCmd, DmFlag, DmIoctlOffset, decodeDmDev, decodeDmIoctlHeader, decodeNameList, decodeTargetSpecs,
  defaultHeader, encodeDmDev, encodeDmIoctlHeader, encodeNameList, encodeTargetSpecs, iowr, makedev,
} from './dm-ioctl.ts'
import {
  DM_UDEV_NO_UDEV_SET, dmOptionsDeferredRemove, dmOptionsDeferredRemoveNoUdev, dmOptionsNoUdev, dmOptionsReadOnlyNoUdev, wireEventNr,
} from './dm-options.ts'
import { DmClient } from './dm-client.ts'
import { FakeDmBackend } from './fake-dm-backend.ts'

describe('dm ioctl request numbers (§9.4)', () => {
  it('B20: CREATE/REMOVE/SUSPEND/STATUS/TABLE_LOAD are _IOWR(0xFD, cmd, 312)', () => {
    expect(DM_DEV_CREATE).toBe(0xc138fd03)
    expect(DM_DEV_REMOVE).toBe(0xc138fd04)
    expect(DM_DEV_SUSPEND).toBe(0xc138fd06)
    expect(DM_DEV_STATUS).toBe(0xc138fd07)
    expect(DM_TABLE_LOAD).toBe(0xc138fd09)
  })
  it('VERSION, LIST_DEVICES, TABLE_STATUS', () => {
    expect(DM_VERSION).toBe(0xc138fd00)
    expect(DM_LIST_DEVICES).toBe(0xc138fd02)
    expect(DM_TABLE_STATUS).toBe(0xc138fd0c)
    expect(iowr(0xfd, 0, 312)).toBe(0xc138fd00)
  })
})

describe('struct dm_ioctl codec (§9.2)', () => {
  it('is 312 bytes with name at 48, uuid at 176, data at 305', () => {
    expect(DM_IOCTL_SIZE).toBe(312)
    expect(DmIoctlOffset).toMatchObject({ dataSize: 12, dataStart: 16, targetCount: 20, openCount: 24, flags: 28, eventNr: 32, padding: 36, dev: 40, name: 48, uuid: 176, data: 305 })
  })

  it('encodes a TABLE_LOAD header byte-exactly', () => {
    const buf = encodeDmIoctlHeader({ ...defaultHeader('kata-verity-vdb1'), dataSize: 16384, targetCount: 1, flags: DmFlag.READONLY, openCount: -1 })
    const expected = Buffer.alloc(312)
    Buffer.from(
      '04000000' + '00000000' + '00000000' + // version 4.0.0
      '00400000' + '38010000' + // data_size 16384, data_start 312
      '01000000' + 'ffffffff' + // target_count 1, open_count -1
      '01000000' + '00000000' + '00000000' + // flags RO, event_nr, padding
      '0000000000000000', 'hex').copy(expected, 0)
    Buffer.from('kata-verity-vdb1', 'latin1').copy(expected, 48)
    expect(buf.equals(expected)).toBe(true)
  })

  it('round-trips every field, dev as u64 bigint', () => {
    const h = { ...defaultHeader('x'), version: [4, 48, 0] as const, dataSize: 32768, targetCount: 3, openCount: 2, flags: 0x20101, eventNr: 0x2f0000, dev: 0xfedcba9876543210n, uuid: 'CRYPT-VERITY-abc' }
    expect(decodeDmIoctlHeader(encodeDmIoctlHeader(h))).toEqual(h)
  })

  it('rejects names that do not fit name[128] and non-ASCII', () => {
    expect(() => encodeDmIoctlHeader(defaultHeader('a'.repeat(128)))).toThrow(/at most 127/)
    expect(() => encodeDmIoctlHeader(defaultHeader('a'.repeat(127)))).not.toThrow()
    expect(() => encodeDmIoctlHeader(defaultHeader('é'))).toThrow(/ASCII/)
  })
})

describe('struct dm_target_spec + params (§9.3)', () => {
  const params = '1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 aabbccdd 0000000000000000'
  it('encodes spec, params, NUL and 8-byte padding with next = 40 + roundup8(len+1)', () => {
    const b = encodeTargetSpecs([{ sectorStart: 0n, length: 16n, targetType: 'verity', params }])
    expect(params.length).toBe(68)
    expect(b.length).toBe(40 + 72)
    expect(b.subarray(0, 40).toString('hex')).toBe(
      '0000000000000000' + '1000000000000000' + '00000000' + '70000000' + Buffer.from('verity').toString('hex') + '00'.repeat(10))
    expect(b.subarray(40, 108).toString('latin1')).toBe(params)
    expect(b.subarray(108).equals(Buffer.alloc(4))).toBe(true)
  })
  it('decodes what it encodes (relative next), several targets', () => {
    const ts = [
      { sectorStart: 0n, length: 16n, targetType: 'verity', params },
      { sectorStart: 16n, length: 8n, targetType: 'linear', params: '/dev/vda 0' },
    ]
    const dec = decodeTargetSpecs(encodeTargetSpecs(ts), 0, 2, 'relative')
    expect(dec.map(({ status: _s, ...t }) => t)).toEqual(ts)
  })
  it('params with exactly 7 bytes need no padding beyond the NUL', () => {
    expect(encodeTargetSpecs([{ sectorStart: 0n, length: 1n, targetType: 'zero', params: '1234567' }]).readUInt32LE(20)).toBe(48)
  })
})

describe('device numbers (§9.8)', () => {
  it('B21: kernel dev 0x12345678 → major 0x456, minor 0x12378', () => {
    expect(decodeDmDev(0x12345678n)).toEqual({ major: 0x456, minor: 0x12378 })
  })
  it('truncates dev to u32 before decoding', () => {
    expect(decodeDmDev(0xffffffff_12345678n)).toEqual({ major: 0x456, minor: 0x12378 })
  })
  it('encodeDmDev is the inverse of decodeDmDev', () => {
    for (const [maj, min] of [[253, 0], [253, 255], [253, 256], [254, 0xfffff]] as const) expect(decodeDmDev(encodeDmDev(maj, min))).toEqual({ major: maj, minor: min })
  })
  it('glibc makedev', () => {
    expect(makedev(253, 1)).toBe(0xfd01n)
    expect(makedev(0x12345, 0x6789a)).toBe((0x12000n << 32n) | (0x345n << 8n) | (0x67800n << 12n) | 0x9an)
  })
})

describe('no-udev options (§9.6, §9.9)', () => {
  it('the no-udev set is the five DISABLE_* flags = 0x002F', () => {
    expect(DM_UDEV_NO_UDEV_SET).toBe(0x2f)
    expect(dmOptionsNoUdev()).toEqual({ flags: 0, udevFlags: 0x2f })
    expect(dmOptionsReadOnlyNoUdev()).toEqual({ flags: DmFlag.READONLY, udevFlags: 0x2f })
    expect(dmOptionsDeferredRemoveNoUdev()).toEqual({ flags: 0x20000, udevFlags: 0x2f })
    expect(dmOptionsDeferredRemove(true)).toEqual({ flags: 0x20000, udevFlags: 0 })
    expect(dmOptionsDeferredRemove(false)).toEqual({ flags: 0x20000, udevFlags: 0x2f })
  })
  it('event_nr is 0 on the wire without udev sync, for every command', () => {
    for (const cmd of Object.values(DmCmd)) expect(wireEventNr(cmd, dmOptionsDeferredRemoveNoUdev(), false)).toBe(0)
  })
  it('with udev sync only REMOVE/RENAME/SUSPEND(no SUSPEND flag)/WAIT carry flags|PRIMARY_SOURCE and the cookie', () => {
    expect(wireEventNr(DmCmd.DEV_REMOVE, dmOptionsDeferredRemoveNoUdev(), { cookie: 0x1234 })).toBe(0x006f1234)
    expect(wireEventNr(DmCmd.DEV_CREATE, dmOptionsReadOnlyNoUdev(), { cookie: 0x1234 })).toBe(0)
    expect(wireEventNr(DmCmd.DEV_SUSPEND, { flags: DmFlag.SUSPEND, udevFlags: 0x2f }, { cookie: 1 })).toBe(0)
  })
})

describe('DM_LIST_DEVICES and buffer growth', () => {
  it('name list round-trips; empty list decodes to []', () => {
    const entries = [{ name: 'a', dev: 1n }, { name: 'kata-verity-vdb1-off8192-aabb', dev: encodeDmDev(253, 7) }]
    expect(decodeNameList(encodeNameList(entries), 0)).toEqual(entries)
    expect(decodeNameList(encodeNameList([]), 0)).toEqual([])
  })
  it('client doubles data_size while the kernel sets DM_BUFFER_FULL', async () => {
    const fake = new FakeDmBackend()
    const dm = new DmClient(await fake.openControl())
    const names = Array.from({ length: 300 }, (_, i) => `kata-verity-dev${i}-off8192-${'ab'.repeat(16)}`)
    for (const n of names) await dm.deviceCreate(n, dmOptionsReadOnlyNoUdev())
    const listed = await dm.listDevices()
    expect(listed.map((d) => d.name)).toEqual(names)
    const sizes = fake.calls.filter((c) => c.cmd === DmCmd.LIST_DEVICES).map((c) => c.header.dataSize)
    expect(sizes).toEqual([16384, 32768])
  })
  it('TABLE_STATUS returns the live table (from-first next offsets)', async () => {
    const fake = new FakeDmBackend()
    const dm = new DmClient(await fake.openControl())
    const t = [{ sectorStart: 0n, length: 16n, targetType: 'verity', params: '1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 aa -' },
      { sectorStart: 16n, length: 8n, targetType: 'zero', params: '' }]
    await dm.deviceCreate('d', dmOptionsReadOnlyNoUdev())
    await dm.tableLoad('d', t, dmOptionsReadOnlyNoUdev())
    await dm.deviceSuspend('d', dmOptionsNoUdev())
    expect(await dm.tableStatus('d', { table: true })).toEqual(t)
    expect(await dm.version()).toEqual([4, 48, 0])
  })
})
