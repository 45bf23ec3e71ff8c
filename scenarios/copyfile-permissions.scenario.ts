import { lstatSync, mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { scenario, test, expect, type RealGuest } from '../harness/scenario.ts'
import { ensureSandbox, sh, SHARED, T } from './_support/containers.ts'

const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
const S_IFREG = 0o100000
const req = (path: string, o: { mode: number; data?: string; size?: number; offset?: number; dirMode?: number; uid?: number; gid?: number }) => ({
  path: `${SHARED}/${path}`,
  fileMode: o.mode,
  dirMode: o.dirMode ?? 0o750,
  data: Buffer.from(o.data ?? ''),
  fileSize: BigInt(o.size ?? Buffer.byteLength(o.data ?? '')),
  offset: BigInt(o.offset ?? 0),
  uid: o.uid ?? 0,
  gid: o.gid ?? 0,
})
const statOf = async (guest: RealGuest, p: string) => (await sh(guest, `stat -c '%a %F %u:%g' ${SHARED}/${p} 2>&1`)).stdout.trim()

scenario(
  {
    name: 'copyfile-permissions',
    upstream:
      'kata-containers d89290472f (runtime-rs sends full st_mode in CopyFile) and 3dba12cd81 (agent CopyFile confined to the shared dir with pathrs): do_copy_file in src/agent/src/rpc.rs',
    requires: ['qemu'],
  },
  () => {
    test('full st_mode from the host (dir 0o40755, file 0o100644) gives 755/644 in the guest, special bits and ownership kept, replaced files get the new mode', async ({ guest }) => {
      await ensureSandbox(guest)
      const host = mkdtempSync(join(tmpdir(), 'kataref-cf-'))
      try {
        mkdirSync(join(host, 'd'))
        chmodSync(join(host, 'd'), 0o755)
        writeFileSync(join(host, 'd/f'), 'hello')
        chmodSync(join(host, 'd/f'), 0o644)
        const dmode = lstatSync(join(host, 'd')).mode
        const fmode = lstatSync(join(host, 'd/f')).mode
        expect([dmode, fmode]).toEqual([0o40755, 0o100644])
        await guest.agent.agent.copyFile(req('cf/d', { mode: dmode, dirMode: S_IFDIR | 0o750 }), T)
        await guest.agent.agent.copyFile(req('cf/d/f', { mode: fmode, data: 'hello', dirMode: dmode }), T)
      } finally {
        rmSync(host, { recursive: true, force: true })
      }
      expect(await statOf(guest, 'cf')).toBe('750 directory 0:0')
      expect(await statOf(guest, 'cf/d')).toBe('755 directory 0:0')
      expect(await statOf(guest, 'cf/d/f')).toBe('644 regular file 0:0')

      await guest.agent.agent.copyFile(req('cf/d/f', { mode: S_IFREG | 0o600, data: 'Hello!', uid: 1000, gid: 1001 }), T)
      expect(await statOf(guest, 'cf/d/f')).toBe('600 regular file 1000:1001')
      expect((await sh(guest, `cat ${SHARED}/cf/d/f`)).stdout).toBe('Hello!')
      await guest.agent.agent.copyFile(req('cf/x/y', { mode: S_IFDIR | 0o3770, dirMode: 0o3755 }), T)
      expect(await statOf(guest, 'cf/x')).toBe('755 directory 0:0')
      expect(await statOf(guest, 'cf/x/y')).toBe('3770 directory 0:0')
      await guest.agent.agent.copyFile(req('cf/suid', { mode: S_IFREG | 0o4755, data: '#!/bin/sh\n', uid: 1000 }), T)
      expect(await statOf(guest, 'cf/suid')).toBe('4755 regular file 1000:0')
    })

    test('chunked upload: target absent and <stem>.tmp present until the last chunk', async ({ guest }) => {
      await guest.agent.agent.copyFile(req('cf/chunked.txt', { mode: S_IFREG | 0o644, data: 'Hello ', size: 11 }), T)
      expect((await sh(guest, `ls ${SHARED}/cf | grep chunked`)).stdout.trim()).toBe('chunked.tmp')
      await guest.agent.agent.copyFile(req('cf/chunked.txt', { mode: S_IFREG | 0o644, data: 'World', size: 11, offset: 6 }), T)
      expect((await sh(guest, `ls ${SHARED}/cf | grep chunked; cat ${SHARED}/cf/chunked.txt`)).stdout).toBe('chunked.txt\nHello World')
    })

    test('symlinks are created verbatim and replaced, never followed; escapes are rejected and nothing is written outside', async ({ guest }) => {
      await guest.agent.agent.copyFile(req('cf/a/link', { mode: S_IFLNK, data: '/etc' }), T)
      expect((await sh(guest, `readlink ${SHARED}/cf/a/link; stat -c '%a %F' ${SHARED}/cf/a/link`)).stdout).toBe('/etc\n777 symbolic link\n')
      await expect(guest.agent.agent.copyFile(req('cf/a/link/evil', { mode: S_IFREG | 0o644, data: 'x' }), T)).rejects.toThrow()
      await guest.agent.agent.copyFile(req('cf/a/link', { mode: S_IFREG | 0o600, data: 'file now' }), T)
      expect(await statOf(guest, 'cf/a/link')).toBe('600 regular file 0:0')
      await expect(guest.agent.agent.copyFile({ ...req('x', { mode: S_IFREG | 0o644, data: 'x' }), path: '/run/kata-containers/shared/containersX/f' }, T)).rejects.toMatchObject({ code: 7 })
      await expect(guest.agent.agent.copyFile(req('cf/../../not-shared', { mode: S_IFREG | 0o644, data: 'x' }), T)).rejects.toMatchObject({ code: 7 })
      expect((await sh(guest, 'ls /etc/evil /run/kata-containers/shared/not-shared /run/kata-containers/shared/containersX 2>&1 | grep -c "No such file"')).stdout.trim()).toBe('3')
    })
  },
)
