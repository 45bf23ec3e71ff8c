import { closeSync, openSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { BlockingPool, blockingThreadsFromEnv, sharedBlockingPool } from './blocking-pool.ts'
import { Errno } from './errors.ts'

describe('BlockingPool (syscalls on worker threads, errno per thread)', () => {
  const pool = new BlockingPool(2)
  afterAll(() => pool.close())

  it('umount2 of a path that does not exist: rc -1 and that thread\'s errno (ENOENT)', async () => {
    expect(await pool.umount2('/nonexistent-kataref-path', 0)).toEqual({ rc: -1, errno: Errno.ENOENT })
  })

  it('ioctl with an unknown request on /dev/null: ENOTTY; calls run concurrently and each gets its own answer', async () => {
    const fd = openSync('/dev/null', 'r')
    try {
      const rs = await Promise.all(Array.from({ length: 6 }, () => pool.ioctl(fd, 0xc138fd00, Buffer.alloc(312))))
      for (const r of rs) expect(r).toEqual({ rc: -1, errno: Errno.ENOTTY })
      expect((await pool.ioctl(-1, 0xc138fd00, Buffer.alloc(8))).errno).toBe(Errno.EBADF)
    } finally {
      closeSync(fd)
    }
  })

  it('the shared pool has 4 workers by default, sized by KATAREF_BLOCKING_THREADS, 0 = inline', () => {
    expect(blockingThreadsFromEnv({})).toBe(4)
    expect(blockingThreadsFromEnv({ KATAREF_BLOCKING_THREADS: '0' })).toBe(0)
    expect(blockingThreadsFromEnv({ KATAREF_BLOCKING_THREADS: '3' })).toBe(3)
    expect(blockingThreadsFromEnv({ KATAREF_BLOCKING_THREADS: 'x' })).toBe(0)
    expect(sharedBlockingPool(0)).toBeUndefined()
  })
})
