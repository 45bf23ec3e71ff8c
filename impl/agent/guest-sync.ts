// ReseedRandomDev and SetGuestDateTime (kata agent rpc.rs, restated): what a runtime calls on a VM
// started from a template, whose RNG state and clock are the template's.
// - ReseedRandomDev: RNDADDENTROPY on /dev/random with the given bytes (entropy counted as 8 bits per
//   byte), then RNDRESEEDCRNG so the CRNG uses them at once.
// - SetGuestDateTime: settimeofday(2) with {Sec, Usec}.
import { closeSync, openSync } from 'node:fs'
import { loadLibc } from '../dmverity/libc.ts'
import { Code, KatarefError } from '../types/errors.ts'
import type { Logger } from '../types/logger.ts'

/** _IOW('R', 0x03, int[2]) */
export const RNDADDENTROPY = 0x40085203
/** _IO('R', 0x07) */
export const RNDRESEEDCRNG = 0x5207

/** struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; } */
export function randPoolInfo(data: Uint8Array): Buffer {
  const words = Math.ceil(data.length / 4)
  const b = Buffer.alloc(8 + words * 4)
  b.writeInt32LE(data.length * 8, 0)
  b.writeInt32LE(data.length, 4)
  Buffer.from(data).copy(b, 8)
  return b
}

/** struct timeval { time_t tv_sec; suseconds_t tv_usec; } (64-bit). */
export function timeval(sec: bigint, usec: bigint): Buffer {
  if (sec < 0n || usec < 0n || usec >= 1_000_000n) throw new KatarefError(`invalid guest time ${sec}s ${usec}us`, Code.INVALID_ARGUMENT)
  const b = Buffer.alloc(16)
  b.writeBigInt64LE(sec, 0)
  b.writeBigInt64LE(usec, 8)
  return b
}

export async function reseedRandomDev(data: Uint8Array): Promise<void> {
  if (data.length === 0) return
  const libc = await loadLibc()
  const fd = openSync('/dev/random', 'w')
  try {
    if (libc.ioctl(fd, RNDADDENTROPY, randPoolInfo(data)) < 0) throw new KatarefError(`RNDADDENTROPY on /dev/random: errno ${libc.errno()}`, Code.INTERNAL)
    if (libc.ioctl(fd, RNDRESEEDCRNG, Buffer.alloc(0)) < 0) throw new KatarefError(`RNDRESEEDCRNG on /dev/random: errno ${libc.errno()}`, Code.INTERNAL)
  } finally {
    closeSync(fd)
  }
}

export async function setGuestDateTime(sec: bigint, usec: bigint): Promise<void> {
  const tv = timeval(sec, usec)
  const mod = (await import('koffi')) as unknown as { default?: typeof import('koffi') } & typeof import('koffi')
  const koffi = mod.default ?? mod
  const settimeofday = koffi.load('libc.so.6').func('int settimeofday(void *tv, void *tz)')
  if ((settimeofday(tv, null) as number) < 0) throw new KatarefError(`settimeofday(${sec}, ${usec}): errno ${koffi.errno()}`, Code.INTERNAL)
}

/** The two handlers, to spread into the AgentService table. */
export function guestSyncHandlers(deps: { logger: Logger }) {
  return {
    reseedRandomDev: async (req: { data: Uint8Array }) => {
      deps.logger.info({ bytes: req.data.length }, 'ReseedRandomDev')
      await reseedRandomDev(req.data)
      return {}
    },
    setGuestDateTime: async (req: { Sec: bigint; Usec: bigint }) => {
      deps.logger.info({ sec: String(req.Sec), usec: String(req.Usec) }, 'SetGuestDateTime')
      await setGuestDateTime(req.Sec, req.Usec)
      return {}
    },
  }
}
