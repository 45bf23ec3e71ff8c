// Typed errors of the dmverity module. Each names what it touched and keeps the original as `cause`,
// so a failure renders as an upstream-style context chain (`a: b: c`, §15).
import { Code, KatarefError } from '../types/errors.ts'
import { DM_CMD_NAMES, type DmCmd } from './dm-ioctl.ts'

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'EPERM', 2: 'ENOENT', 5: 'EIO', 6: 'ENXIO', 9: 'EBADF', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 20: 'ENOTDIR', 22: 'EINVAL', 25: 'ENOTTY', 28: 'ENOSPC', 30: 'EROFS',
  39: 'ENOTEMPTY', 95: 'EOPNOTSUPP',
}
export const Errno = { EPERM: 1, ENOENT: 2, EIO: 5, ENXIO: 6, EBADF: 9, ENOMEM: 12, EACCES: 13, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, ENOTTY: 25, ENOTEMPTY: 39 } as const

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`
}

/** A DM ioctl that the kernel (or the fake) rejected. */
export class DmIoctlError extends KatarefError {
  constructor(readonly cmd: DmCmd, readonly dmName: string, readonly errno: number, options?: ErrorOptions) {
    super(`${DM_CMD_NAMES[cmd] ?? `DM cmd ${cmd}`} ${dmName || '(no name)'}: ${errnoName(errno)} (${errno})`,
      errno === Errno.ENXIO ? Code.NOT_FOUND : Code.INTERNAL, { cmd, dmName, errno }, options)
  }
}

/** Parsing/validation of X-kata.dmverity.* options; the message is the spec's text (§6). */
export class DmVerityOptionsError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, Code.INVALID_ARGUMENT, context, options)
  }
}

/** Steps of creating or destroying a verity device, named as in issue 4. */
export type VerityStep = 'control' | 'validate' | 'stale-remove' | 'create' | 'table-load' | 'resume' | 'status' | 'mknod' | 'remove' | 'unlink'

/** A failed step of creating/destroying one verity device. */
export class DmVerityError extends KatarefError {
  constructor(message: string, readonly step: VerityStep, readonly dmName: string, options?: ErrorOptions) {
    super(message, Code.INTERNAL, { step, dmName }, options)
  }
}

/** A node operation (mkdir, unlink, mknod) that failed, with the path. */
export class NodeOpError extends KatarefError {
  constructor(message: string, readonly path: string, readonly errno: number | undefined, options?: ErrorOptions) {
    super(message, Code.INTERNAL, { path, errno }, options)
  }
}

/** Every message on the `cause` chain, outermost first. */
export function errorChain(e: unknown): string[] {
  const out: string[] = []
  let cur: unknown = e
  for (let i = 0; cur !== undefined && cur !== null && i < 32; i++) {
    out.push(cur instanceof Error ? cur.message : String(cur))
    cur = cur instanceof Error ? cur.cause : undefined
  }
  return out
}

/** Upstream rendering of a context chain: `a: b: c`. */
export function formatErrorChain(e: unknown): string {
  return errorChain(e).join(': ')
}

/** errno of a Node system error (ENOENT → 2), if any. */
export function errnoOf(e: unknown): number | undefined {
  if (e && typeof e === 'object' && 'errno' in e && typeof (e as { errno: unknown }).errno === 'number') {
    const n = (e as { errno: number }).errno
    return n < 0 ? -n : n
  }
  return undefined
}
