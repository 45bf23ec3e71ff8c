// Lazily bound libc entry points (koffi). Nothing is loaded until first use, so importing
// the dmverity module works on hosts without device-mapper or without koffi's native part.

export interface Libc {
  /** ioctl(fd, request, buf) — declared non-variadic (same x86_64/aarch64 ABI for a pointer arg). */
  ioctl(fd: number, request: number, buf: Buffer): number
  /** mknod(path, mode, dev) with dev_t as u64. */
  mknod(path: string, mode: number, dev: bigint): number
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number
  umount2(target: string, flags: number): number
  errno(): number
  /** The same calls on a libuv threadpool thread (koffi `.async`), with that thread's errno. */
  async: {
    ioctl(fd: number, request: number, buf: Buffer): Promise<SyscallResult>
    mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): Promise<SyscallResult>
    umount2(target: string, flags: number): Promise<SyscallResult>
  }
}

export interface SyscallResult {
  rc: number
  errno: number
}

/** An inline call's result: errno read on this thread right after the call (the `.async` calls read theirs on the pool thread). */
export function inlineResult(libc: Libc, rc: number): SyscallResult {
  return { rc, errno: rc < 0 ? libc.errno() : 0 }
}

let cached: Promise<Libc> | undefined

export function loadLibc(): Promise<Libc> {
  cached ??= (async () => {
    const mod = (await import('koffi')) as unknown as { default?: typeof import('koffi') } & typeof import('koffi')
    const koffi = mod.default ?? mod
    const lib = koffi.load('libc.so.6')
    const ioctl = lib.func('int ioctl(int fd, unsigned long request, void *arg)')
    const mount = lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)')
    const umount2 = lib.func('int umount2(const char *target, int flags)')
    let mknod: (path: string, mode: number, dev: bigint) => number
    try {
      // glibc ≥ 2.33 exports mknod; older ones only __xmknod(ver=0, path, mode, dev_t *).
      const f = lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)')
      mknod = (p, m, d) => f(p, m, d) as number
    } catch {
      const f = lib.func('int __xmknod(int ver, const char *path, uint32_t mode, uint64_t *dev)')
      mknod = (p, m, d) => f(0, p, m, [d]) as number
    }
    // koffi hands the async callback the errno of the thread that made the call (koffi ≥ 3.2).
    const onPool = (f: { async: (...a: unknown[]) => void }, ...args: unknown[]) =>
      new Promise<SyscallResult>((resolve, reject) => {
        f.async(...args, (err: unknown, rc: number) => (err ? reject(err) : resolve({ rc, errno: rc < 0 ? koffi.errno() : 0 })))
      })
    return {
      ioctl: (fd, request, buf) => ioctl(fd, request, buf) as number,
      mknod,
      mount: (s, t, f, fl, d) => mount(s, t, f, fl, d) as number,
      umount2: (t, f) => umount2(t, f) as number,
      errno: () => koffi.errno(),
      async: {
        ioctl: (fd, request, buf) => onPool(ioctl, fd, request, buf),
        mount: (src, t, f, fl, d) => onPool(mount, src, t, f, fl, d),
        umount2: (t, f) => onPool(umount2, t, f),
      },
    }
  })()
  return cached
}
