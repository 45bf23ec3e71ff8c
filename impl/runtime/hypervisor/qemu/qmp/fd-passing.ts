// SCM_RIGHTS fd passing for QMP `getfd` / `add-fd`. Node's net.Socket cannot attach
// ancillary data, so we call libc `sendmsg(2)` through koffi on the socket's own fd.
//
// What goes on the wire: one space byte carrying the descriptors. QEMU's chardev keeps the
// received fds and the next `add-fd`/`getfd` command consumes them; whitespace between JSON
// objects is ignored by QEMU's parser (the same trick QEMU's own Python QMP library uses).
// The command itself is then written through the normal stream, after the space.
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import koffi from 'koffi'
import { Code, KatarefError } from '../../../../types/errors.ts'

/** Sends descriptors ahead of the next command. The QMP client calls it before writing a command with `fds`. */
export interface FdSender {
  sendFds(fds: readonly number[]): Promise<void>
}

export class FdPassingError extends KatarefError {
  constructor(problem: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`qmp: fd passing: ${problem}`, Code.INTERNAL, context, options)
  }
}

const SOL_SOCKET = 1
const SCM_RIGHTS = 1
const EAGAIN = 11
const EINTR = 4
const MSG_NOSIGNAL = 0x4000

interface Libc {
  sendmsg: (fd: number, msg: unknown, flags: number) => number | bigint
}

let libc: Libc | undefined

function loadLibc(): Libc {
  if (libc) return libc
  // The msghdr/cmsghdr layout used here is the LP64 Linux one (x86_64, aarch64).
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    throw new FdPassingError(`unsupported platform ${process.platform}/${process.arch}`)
  }
  const lib = koffi.load('libc.so.6')
  const iovec = koffi.struct('kataref_iovec', { iov_base: 'void *', iov_len: 'size_t' })
  const msghdr = koffi.struct('kataref_msghdr', {
    msg_name: 'void *',
    msg_namelen: 'uint32_t',
    msg_iov: koffi.pointer(iovec),
    msg_iovlen: 'size_t',
    msg_control: 'void *',
    msg_controllen: 'size_t',
    msg_flags: 'int',
  })
  const sendmsg = lib.func('sendmsg', 'intptr_t', ['int', koffi.pointer(msghdr), 'int']) as Libc['sendmsg']
  libc = { sendmsg }
  return libc
}

/** Control buffer of one SCM_RIGHTS cmsghdr holding `fds` (LP64: 8-byte cmsg_len, 4+4 level/type). */
export function buildRightsControl(fds: readonly number[]): Buffer {
  const len = 16 + 4 * fds.length // CMSG_LEN
  const space = (len + 7) & ~7 // CMSG_SPACE
  const b = Buffer.alloc(space)
  b.writeBigUInt64LE(BigInt(len), 0)
  b.writeInt32LE(SOL_SOCKET, 8)
  b.writeInt32LE(SCM_RIGHTS, 12)
  fds.forEach((fd, i) => b.writeInt32LE(fd, 16 + 4 * i))
  return b
}

/** Send `fds` with one space byte on the unix socket `fd`. Retries briefly on EAGAIN/EINTR. */
export async function sendFdsOnFd(sockFd: number, fds: readonly number[]): Promise<void> {
  if (fds.length === 0) return
  const { sendmsg } = loadLibc()
  const payload = Buffer.from(' ')
  const control = buildRightsControl(fds)
  const msg = {
    msg_name: null,
    msg_namelen: 0,
    msg_iov: [{ iov_base: payload, iov_len: payload.length }],
    msg_iovlen: 1,
    msg_control: control,
    msg_controllen: control.length,
    msg_flags: 0,
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    const n = Number(sendmsg(sockFd, msg, MSG_NOSIGNAL))
    if (n === 1) return
    const errno = koffi.errno()
    if (n < 0 && (errno === EAGAIN || errno === EINTR)) {
      await sleep(5)
      continue
    }
    throw new FdPassingError(`sendmsg returned ${n} (errno ${errno})`, { sockFd, fds: [...fds], errno })
  }
  throw new FdPassingError('sendmsg kept returning EAGAIN', { sockFd, fds: [...fds] })
}

/** The OS fd behind a connected net.Socket (unix). Uses libuv's handle, which exposes `fd` on Unix. */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) throw new FdPassingError('socket has no usable fd (not connected, or not a unix socket)')
  return fd
}

/** FdSender for a connected unix-domain net.Socket. Waits for Node's pending writes first so the byte order holds. */
export function socketFdSender(socket: Socket): FdSender {
  return {
    async sendFds(fds) {
      if (socket.writableLength > 0) {
        await new Promise<void>((resolve, reject) => socket.write('', (err) => (err ? reject(err) : resolve())))
      }
      await sendFdsOnFd(socketFd(socket), fds)
    },
  }
}
