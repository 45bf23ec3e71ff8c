import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm, writeFile, readFile, readdir, mkdir } from 'node:fs/promises'
import { readFileSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { constants } from 'node:fs'
import { prepareVmdkBlockSource } from './fdset-source.ts'
import { renderVmdkDescriptor, parseVmdkDescriptor } from './descriptor.ts'
import { InvalidInputError } from '../../impl/types/errors.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'kataref-fdset-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

function fdFlags(fd: number): number {
  const m = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
  return parseInt(m![1]!, 8)
}

function registry() {
  const regs: { label: string; flags: number; target: string; content?: string }[] = []
  let id = 1
  const register = async (fd: number, label: string) => {
    const target = readlinkSync(`/proc/self/fd/${fd}`)
    regs.push({ label, flags: fdFlags(fd), target, ...(label === 'vmdk-descriptor' ? { content: readFileSync(`/proc/self/fd/${fd}`, 'utf8') } : {}) })
    return `/dev/fdset/${id++}`
  }
  return { regs, register }
}

describe('VMDK descriptor over fdsets (§6.3) — §16 rows 13–16', () => {
  it('row 13: 8@0, 4@8 of one file and 16@0 of another', () => {
    const text = renderVmdkDescriptor([{ path: 'a', sectors: 8, fileOffset: 0 }, { path: 'a', sectors: 4, fileOffset: 8 }, { path: 'b', sectors: 16, fileOffset: 0 }],
      (e) => (e.path === 'a' ? '/dev/fdset/1' : '/dev/fdset/2'))
    expect(text).toContain('RW 8 FLAT "/dev/fdset/1" 0\nRW 4 FLAT "/dev/fdset/1" 8\nRW 16 FLAT "/dev/fdset/2" 0\n')
    expect(text).toContain('ddb.geometry.cylinders = "1"')
    expect(text.startsWith('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="twoGbMaxExtentFlat"\n\n# Extent description\n')).toBe(true)
    expect(text.endsWith('ddb.adapterType = "ide"\n')).toBe(true)
    expect(() => renderVmdkDescriptor([])).toThrow(/no non-empty extents/)
  })
  it('row 14: labels vmdk-extent-0, vmdk-extent-1, vmdk-descriptor; only fdset paths; read-only', async () => {
    const a = join(dir, 'a'); const b = join(dir, 'b')
    await writeFile(a, Buffer.alloc(4096)); await writeFile(b, Buffer.alloc(8192))
    const { regs, register } = registry()
    const src = await prepareVmdkBlockSource([{ path: a, sectors: 8, fileOffset: 0 }, { path: b, sectors: 16, fileOffset: 0 }, { path: a, sectors: 0, fileOffset: 8 }],
      { readOnly: true, direct: false, reservedPath: join(dir, 'merged_fs.vmdk'), register })
    expect(src.labels).toEqual(['vmdk-extent-0', 'vmdk-extent-1', 'vmdk-descriptor'])
    expect(regs.map((r) => r.label)).toEqual(src.labels)
    for (const r of regs) expect(r.flags & 3).toBe(constants.O_RDONLY)
    expect(regs[2]!.content).toBe(src.descriptor)
    expect(parseVmdkDescriptor(src.descriptor).extents.map((e) => e.path)).toEqual(['/dev/fdset/1', '/dev/fdset/2'])
    expect(src.descriptor).not.toContain(dir)
    expect(src.descriptorPath).toBe('/dev/fdset/3')
    expect(regs[2]!.target).toMatch(/\(deleted\)$/)
    await src.close()
  })
  it('row 15: 512-byte file declared as 1@0 + 1@1 → shorter than its declared layout; fds closed', async () => {
    const a = join(dir, 'a'); await writeFile(a, Buffer.alloc(512))
    const { register } = registry()
    const before = (await readdir('/proc/self/fd')).length
    await expect(prepareVmdkBlockSource([{ path: a, sectors: 1, fileOffset: 0 }, { path: a, sectors: 1, fileOffset: 1 }], { readOnly: true, direct: false, reservedPath: join(dir, 'm.vmdk'), register }))
      .rejects.toThrow(/VMDK extent .* is shorter than its declared layout/)
    expect((await readdir('/proc/self/fd')).length).toBe(before)
    await expect(prepareVmdkBlockSource([], { readOnly: true, direct: false, reservedPath: 'x', register })).rejects.toThrow(/VMDK contains no extents/)
    await expect(prepareVmdkBlockSource([{ path: dir, sectors: 1, fileOffset: 0 }], { readOnly: true, direct: false, reservedPath: 'x', register })).rejects.toThrow(InvalidInputError)
    await expect(prepareVmdkBlockSource([{ path: join(dir, 'nope'), sectors: 1, fileOffset: 0 }], { readOnly: true, direct: false, reservedPath: 'x', register })).rejects.toThrow(/open QEMU block source/)
  })
  it('row 16: direct I/O on → descriptor fd has O_DIRECT and lives in the container dir; extent fds never O_DIRECT', async (ctx) => {
    const cdir = join(dir, 'sid', 'cid'); await mkdir(cdir, { recursive: true })
    const a = join(dir, 'a'); await writeFile(a, Buffer.alloc(4096))
    const { regs, register } = registry()
    let src
    try {
      src = await prepareVmdkBlockSource([{ path: a, sectors: 8, fileOffset: 0 }], { readOnly: true, direct: true, reservedPath: join(cdir, 'merged_fs.vmdk'), register })
    } catch (e) {
      if (/O_DIRECT/.test(String(e))) ctx.skip() // this file system cannot do O_DIRECT
      throw e
    }
    expect(regs[0]!.flags & constants.O_DIRECT).toBe(0)
    expect(regs[1]!.flags & constants.O_DIRECT).toBe(constants.O_DIRECT)
    expect(regs[1]!.target.startsWith(cdir)).toBe(true)
    expect(await readdir(cdir)).toEqual([]) // unlinked
    await src.close()
    expect(await readFile(a)).toHaveLength(4096)
  })
})
