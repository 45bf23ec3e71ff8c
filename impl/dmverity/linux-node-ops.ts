// Real NodeOps for the guest: node:fs for directories and unlink, mknod(2) through koffi.
// mknod via koffi rather than busybox `mknod`: no dependency on which applets the guest image
// ships, no process spawn per device, and the errno comes back directly for the error chain.
import { mkdir, rm, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { makedev } from './dm-ioctl.ts'
import { errnoName } from './errors.ts'
import { loadLibc } from './libc.ts'
import { S_IFBLK, type NodeOps } from './node-ops.ts'

export class LinuxNodeOps implements NodeOps {
  async mkdirAll(path: string): Promise<string[]> {
    const missing: string[] = []
    for (let p = path; p !== dirname(p); p = dirname(p)) {
      if (await this.exists(p)) break
      missing.unshift(p)
    }
    await mkdir(path, { recursive: true })
    return missing
  }

  async exists(path: string): Promise<boolean> {
    try {
      await stat(path)
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw e
    }
  }

  async unlink(path: string): Promise<void> {
    await unlink(path)
  }

  async rmdirIfEmpty(path: string): Promise<boolean> {
    try {
      await rmdir(path)
      return true
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EBUSY') return false
      throw e
    }
  }

  async removeTree(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true })
  }

  async mknodBlock(path: string, mode: number, major: number, minor: number): Promise<void> {
    const libc = await loadLibc()
    if (libc.mknod(path, S_IFBLK | (mode & 0o7777), makedev(major, minor)) !== 0) {
      const errno = libc.errno()
      throw Object.assign(new Error(`mknod ${path}: ${errnoName(errno)}`), { errno, code: errnoName(errno) })
    }
  }
}
