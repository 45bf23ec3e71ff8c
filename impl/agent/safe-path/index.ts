// safe-path (spec §6; upstream src/libs/safe-path): resolve an untrusted path inside a root as if the
// root were a chroot. Components are handled lexically on a stack (never path.resolve): `.` and `/` are
// skipped, `..` pops (never above the root), a symlink's target replaces the processed prefix
// (absolute → restart at the root). More than 255 symlinks → "Too many levels of symlinks".
import { constants as fsc } from 'node:fs'
import { mkdir, open, readlink, realpath, lstat } from 'node:fs/promises'
import { Code, KatarefError } from '../../types/errors.ts'

export class SafePathError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, Code.INVALID_ARGUMENT, context, options)
  }
}

export const MAX_SYMLINKS = 255

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.')
}

/** Returns the resolved path relative to the canonical root ("" for the root itself). */
export async function scopedResolve(root: string, unsafe: string): Promise<string> {
  const croot = await canonicalRoot(root)
  return resolveIn(croot, unsafe)
}

/** canonical root + "/" + scopedResolve(root, unsafe). */
export async function scopedJoin(root: string, unsafe: string): Promise<string> {
  const croot = await canonicalRoot(root)
  const rel = await resolveIn(croot, unsafe)
  return rel === '' ? croot : croot === '/' ? `/${rel}` : `${croot}/${rel}`
}

async function canonicalRoot(root: string): Promise<string> {
  try {
    return await realpath(root)
  } catch (e) {
    throw new SafePathError(`safe-path: root ${root} cannot be canonicalised: ${(e as NodeJS.ErrnoException).code}`, { root }, { cause: e })
  }
}

async function resolveIn(croot: string, unsafe: string): Promise<string> {
  let stack: string[] = []
  let rest = components(unsafe)
  let links = 0
  while (rest.length > 0) {
    const name = rest.shift()!
    if (name === '..') {
      stack.pop()
      continue
    }
    const here = `${croot === '/' ? '' : croot}/${[...stack, name].join('/')}`
    let target: string | undefined
    try {
      target = await readlink(here)
    } catch {
      target = undefined // not a symlink, missing, or unreadable: pushed as is
    }
    if (target === undefined) {
      stack.push(name)
      continue
    }
    if (++links > MAX_SYMLINKS) throw new SafePathError(`safe-path: Too many levels of symlinks resolving ${unsafe}`, { root: croot, path: unsafe })
    if (target.startsWith('/')) stack = []
    rest = [...components(target), ...rest]
  }
  return stack.join('/')
}

/** `name` must be exactly one normal component. */
export function checkComponent(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new SafePathError(`safe-path: ${JSON.stringify(name)} is not a single normal path component`, { name })
  }
}

/**
 * PinnedPath: the path opened (read-only; O_DIRECTORY for directories) and checked through
 * /proc/self/fd/<n> to equal the expected canonical path; `path` is the stable handle.
 */
export class PinnedPath {
  private constructor(
    readonly fd: number,
    readonly target: string,
    private readonly close_: () => Promise<void>,
  ) {}

  get path(): string {
    return `/proc/self/fd/${this.fd}`
  }

  static async new(root: string, unsafe: string): Promise<PinnedPath> {
    return PinnedPath.pin(await scopedJoin(root, unsafe))
  }

  /** No scoping: fails unless p is already canonical. */
  static async fromPath(p: string): Promise<PinnedPath> {
    return PinnedPath.pin(p)
  }

  private static async pin(expected: string): Promise<PinnedPath> {
    let st
    try {
      st = await lstat(expected)
    } catch (e) {
      throw new SafePathError(`safe-path: ${expected} does not exist`, { path: expected }, { cause: e })
    }
    const flags = fsc.O_RDONLY | (st.isDirectory() ? fsc.O_DIRECTORY : 0) | fsc.O_NONBLOCK
    const fh = await open(expected, flags).catch((e) => {
      throw new SafePathError(`safe-path: cannot open ${expected}: ${(e as NodeJS.ErrnoException).code}`, { path: expected }, { cause: e })
    })
    const actual = await readlink(`/proc/self/fd/${fh.fd}`)
    if (actual !== expected) {
      await fh.close()
      throw new SafePathError(`safe-path: Path changed from ${expected} to ${actual}, possible attack`, { expected, actual })
    }
    return new PinnedPath(fh.fd, expected, () => fh.close())
  }

  async openChild(name: string): Promise<PinnedPath> {
    checkComponent(name)
    return PinnedPath.pin(`${this.target === '/' ? '' : this.target}/${name}`)
  }

  async mkdir(name: string, mode = 0o777): Promise<PinnedPath> {
    checkComponent(name)
    const p = `${this.path}/${name}`
    await mkdir(p, { mode })
    return this.openChild(name)
  }

  close(): Promise<void> {
    return this.close_()
  }
}

/**
 * ScopedDirBuilder.create (recursive): resolves `unsafe` with scopedResolve and creates the missing
 * components one by one, each checked to be a directory inside the root. Returns the absolute path.
 */
export async function scopedMkdirAll(root: string, unsafe: string, mode = 0o777): Promise<{ path: string; created: string[] }> {
  const croot = await canonicalRoot(root)
  const rel = await resolveIn(croot, unsafe)
  let cur = croot
  const created: string[] = []
  for (const c of components(rel)) {
    cur = cur === '/' ? `/${c}` : `${cur}/${c}`
    try {
      const st = await lstat(cur)
      if (!st.isDirectory()) throw new SafePathError(`safe-path: ${cur} exists and is not a directory`, { path: cur })
    } catch (e) {
      if (e instanceof SafePathError) throw e
      await mkdir(cur, { mode: mode & 0o777 })
      created.push(cur)
    }
  }
  return { path: cur, created }
}
