import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../types/errors.ts'
import { BlockingPool, blockingSyscallsOnThreadpool, sharedBlockingPool } from './blocking-pool.ts'
import { Errno } from './errors.ts'

describe('BlockingPool (syscalls on libuv threadpool threads, errno of that thread)', () => {
  const pool = new BlockingPool()

  it('umount2 of a path that does not exist: rc -1 and that thread\'s errno (ENOENT)', async () => {
    expect(await pool.umount2('/nonexistent-kataref-path', 0)).toEqual({ rc: -1, errno: Errno.ENOENT })
  })

  it('ioctl with an unknown request on /dev/null: ENOTTY; calls run concurrently and each gets its own answer', async () => {
    const fd = openSync('/dev/null', 'r')
    try {
      const rs = await Promise.all(Array.from({ length: 6 }, () => pool.ioctl(fd, 0xc138fd00, Buffer.alloc(312))))
      for (const r of rs) expect(r).toEqual({ rc: -1, errno: Errno.ENOTTY })
      // Interleaved with a different failure: errnos do not leak between calls.
      const [bad, tty] = await Promise.all([pool.ioctl(-1, 0xc138fd00, Buffer.alloc(8)), pool.ioctl(fd, 0xc138fd00, Buffer.alloc(8))])
      expect(bad.errno).toBe(Errno.EBADF)
      expect(tty.errno).toBe(Errno.ENOTTY)
    } finally {
      closeSync(fd)
    }
  })

  it('the kernel writes into the caller\'s buffer in place (FIONREAD on a pipe with 5 bytes queued)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kataref-pool-'))
    try {
      // O_RDWR on a FIFO opens both ends at once without blocking.
      execFileSync('mkfifo', [join(dir, 'p')])
      const fd = openSync(join(dir, 'p'), 'r+')
      try {
        writeSync(fd, 'hello')
        const buf = Buffer.alloc(4)
        const FIONREAD = 0x541b
        expect(await pool.ioctl(fd, FIONREAD, buf)).toEqual({ rc: 0, errno: 0 })
        expect(buf.readInt32LE(0)).toBe(5)
      } finally {
        closeSync(fd)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('KATAREF_BLOCKING_SYSCALLS: unset or threadpool → pool, inline → none, anything else → an error naming the variable', () => {
    expect(blockingSyscallsOnThreadpool({})).toBe(true)
    expect(blockingSyscallsOnThreadpool({ KATAREF_BLOCKING_SYSCALLS: 'threadpool' })).toBe(true)
    expect(blockingSyscallsOnThreadpool({ KATAREF_BLOCKING_SYSCALLS: 'inline' })).toBe(false)
    expect(() => blockingSyscallsOnThreadpool({ KATAREF_BLOCKING_SYSCALLS: '4' })).toThrow(InvalidInputError)
    expect(() => blockingSyscallsOnThreadpool({ KATAREF_BLOCKING_SYSCALLS: '4' })).toThrow(/KATAREF_BLOCKING_SYSCALLS.*"4".*threadpool.*inline/)
    expect(sharedBlockingPool(false)).toBeUndefined()
    expect(sharedBlockingPool(true)).toBe(sharedBlockingPool(true))
  })
})
