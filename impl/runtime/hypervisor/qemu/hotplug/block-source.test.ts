import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { prepareBlockSource, renderVmdkDescriptor } from './block-source.ts'
import { blockFdOpaque, nodeNameOfOpaque, BlockFdsets } from './block-fdsets.ts'
import { tempDir, tempFile } from './test-support.ts'

const dir = tempDir()

describe('block source preparation (spec §3 step 2)', () => {
  it('opens read-only sources without write access, writable ones read-write; our fd is closed afterwards', async () => {
    const p = tempFile(dir, 'ro.raw', 4096)
    let seen = -1
    const res = await prepareBlockSource(p, undefined, true, false, async (fd, label) => {
      expect(label).toBe('block-source')
      expect(() => fs.writeSync(fd, 'x')).toThrow()
      seen = fd
      return '/dev/fdset/7'
    })
    expect(res).toEqual({ filename: '/dev/fdset/7', isRegularFile: true })
    expect(() => fs.fstatSync(seen)).toThrow()

    await prepareBlockSource(p, undefined, false, false, async (fd) => {
      expect(fs.writeSync(fd, 'x')).toBe(1)
      return '/dev/fdset/8'
    })
  })

  it('a missing source fails naming the path', async () => {
    await expect(prepareBlockSource(`${dir}/nope.raw`, undefined, true, false, async () => '')).rejects.toThrow(`open QEMU block source ${dir}/nope.raw: ENOENT`)
  })

  it('VMDK: extents registered once each, descriptor names their fdsets and no host path', async () => {
    const a = tempFile(dir, 'a.raw', 512 * 12)
    const b = tempFile(dir, 'b.raw', 512 * 16)
    const labels: string[] = []
    let descriptor = ''
    const res = await prepareBlockSource(
      'merged.vmdk',
      { extents: [{ pathOnHost: a, sectors: 8, fileOffset: 0 }, { pathOnHost: a, sectors: 4, fileOffset: 8 }, { pathOnHost: b, sectors: 16, fileOffset: 0 }] },
      true,
      false,
      async (fd, label) => {
        if (label === 'vmdk-descriptor') descriptor = fs.readFileSync(fd, 'utf8')
        labels.push(label)
        return `/dev/fdset/${labels.length + 9}`
      },
    )
    expect(labels).toEqual(['vmdk-extent-0', 'vmdk-extent-1', 'vmdk-descriptor'])
    expect(res.filename).toBe('/dev/fdset/12')
    expect(descriptor).toContain('RW 8 FLAT "/dev/fdset/10" 0')
    expect(descriptor).toContain('RW 4 FLAT "/dev/fdset/10" 8')
    expect(descriptor).toContain('RW 16 FLAT "/dev/fdset/11" 0')
    expect(descriptor).toContain('ddb.geometry.cylinders = "1"')
    expect(descriptor).not.toContain(a)
  })

  it('VMDK: a short extent or an empty layout is refused', async () => {
    const s = tempFile(dir, 's.raw', 512)
    await expect(prepareBlockSource('d.vmdk', { extents: [{ pathOnHost: s, sectors: 1, fileOffset: 1 }] }, true, false, async () => 'x')).rejects.toThrow(
      /shorter than its declared layout/,
    )
    await expect(prepareBlockSource('d.vmdk', { extents: [] }, true, false, async () => 'x')).rejects.toThrow(/VMDK contains no extents/)
    expect(() => renderVmdkDescriptor({ extents: [{ pathOnHost: s, sectors: 0, fileOffset: 0 }] }, new Map([[s, 'x']]))).toThrow(/no non-empty extents/)
  })
})

describe('fdset opaques (spec §2)', () => {
  it('kata-block:<node>:<label> round trip; foreign opaques ignored', () => {
    expect(blockFdOpaque('drive-3', 'block-source')).toBe('kata-block:drive-3:block-source')
    expect(nodeNameOfOpaque('kata-block:drive-3:vmdk-extent-0')).toBe('drive-3')
    expect(nodeNameOfOpaque('kata-block::x')).toBeUndefined()
    expect(nodeNameOfOpaque('other')).toBeUndefined()
    const f = new BlockFdsets()
    f.add('drive-1', 2)
    f.add('drive-1', 2)
    expect(f.get('drive-1')).toEqual([2])
    f.forget('drive-1', [2])
    expect(f.has('drive-1')).toBe(false)
  })
})
