// The initramfs (newc cpio, gzip): static busybox + the kernel modules + /init.
// Two variants: "full" mounts the EROFS rootfs and switch_roots into it; "bare" prints a marker
// and powers off (boot benchmarks). Cached by the hash of every input.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
import { execa } from 'execa'
import { ToolError } from '../../impl/types/errors.ts'
import { atomicEntry, hashFileMemo, humanSize, pruneEntries, sha256, touchEntry, type Progress } from './cache.ts'
import { withParents, writeCpio, type CpioEntry } from './cpio.ts'
import { BARE_INIT, INITRAMFS_INIT } from './scripts.ts'

const gzipAsync = promisify(gzip)

export const DEFAULT_BUSYBOX = '/usr/bin/busybox'

export function findBusybox(): string {
  const env = process.env.KATAREF_BUSYBOX
  for (const p of [env, DEFAULT_BUSYBOX, '/bin/busybox'].filter((x): x is string => !!x)) {
    if (existsSync(p)) return p
  }
  throw new ToolError('busybox', 'no static busybox found (install busybox-static, or set KATAREF_BUSYBOX)')
}

/** Applet paths (`bin/ls`, `sbin/init`, …) reported by `busybox --list-full`. */
export function busyboxApplets(busybox: string): string[] {
  const out = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' })
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.includes('..'))
    .sort()
}

/** One [applet path, link target] per applet: relative links to bin/busybox, so they work in any root. */
export function busyboxAppletLinks(busybox: string): Array<[string, string]> {
  return busyboxApplets(busybox)
    .filter((applet) => applet !== 'bin/busybox')
    .map((applet) => [applet, `${'../'.repeat(applet.split('/').length - 1)}bin/busybox`])
}

/** Busybox at /bin/busybox and one symlink per applet. */
export function busyboxEntries(busybox: string): CpioEntry[] {
  return [
    { kind: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
    ...busyboxAppletLinks(busybox).map(([path, target]): CpioEntry => ({ kind: 'symlink', path, target })),
  ]
}

/** Reads a module file, decompressing .ko.xz / .ko.zst / .ko.gz (busybox insmod wants plain .ko). */
export async function readModule(path: string): Promise<Buffer> {
  const run = async (cmd: string, args: string[]): Promise<Buffer> => {
    const r = await execa(cmd, [...args, path], { encoding: 'buffer', stripFinalNewline: false })
    return Buffer.from(r.stdout)
  }
  if (path.endsWith('.ko.xz')) return run('xz', ['-dc'])
  if (path.endsWith('.ko.zst')) return run('zstd', ['-dcq'])
  if (path.endsWith('.ko.gz')) return run('gzip', ['-dc'])
  return readFileSync(path)
}

export function moduleGuestName(path: string): string {
  return basename(path).replace(/\.ko(\.(xz|zst|gz))?$/, '.ko')
}

function baseEntries(): CpioEntry[] {
  return [
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'newroot' },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'dir', path: 'root', mode: 0o700 },
  ]
}

export interface InitramfsResult {
  path: string
  hash: string
  cached: boolean
}

async function buildArchive(
  cacheDir: string,
  label: string,
  hash: string,
  progress: Progress,
  entries: () => Promise<CpioEntry[]>,
): Promise<InitramfsResult> {
  const path = join(cacheDir, 'initramfs', `${label}-${hash.slice(0, 16)}.cpio.gz`)
  const t0 = Date.now()
  const built = await atomicEntry(path, async (tmp) => {
    progress(`building ${label} initramfs ${hash.slice(0, 16)}`)
    const cpio = writeCpio(withParents(await entries()))
    const gz = await gzipAsync(cpio, { level: 6 })
    await writeFile(tmp, gz)
    progress(`${label} initramfs: ${humanSize(cpio.length)} cpio → ${humanSize(gz.length)} gzip in ${Date.now() - t0} ms`)
  })
  if (!built) progress(`reusing cached ${label} initramfs ${hash.slice(0, 16)}`)
  touchEntry(path)
  pruneEntries(join(cacheDir, 'initramfs'), `${label}-`, 4, [path])
  return { path, hash, cached: !built }
}

/** The full initramfs: busybox, the modules (in `moduleOrder`), /init. */
export async function buildInitramfs(opts: {
  cacheDir: string
  progress: Progress
  busybox: string
  moduleOrder: readonly string[]
  kernelVersion: string
}): Promise<InitramfsResult> {
  const hashes = await Promise.all(opts.moduleOrder.map((m) => hashFileMemo(m)))
  const hash = sha256(
    'initramfs-v1',
    opts.kernelVersion,
    await hashFileMemo(opts.busybox),
    INITRAMFS_INIT,
    ...opts.moduleOrder.map((m, i) => `${moduleGuestName(m)}:${hashes[i]}`),
  )
  return buildArchive(opts.cacheDir, 'full', hash, opts.progress, async () => {
    const names = opts.moduleOrder.map(moduleGuestName)
    const modules: CpioEntry[] = []
    for (const [i, m] of opts.moduleOrder.entries()) {
      modules.push({ kind: 'file', path: `lib/modules/${names[i]}`, data: await readModule(m), mode: 0o644 })
    }
    return [
      ...baseEntries(),
      ...busyboxEntries(opts.busybox),
      ...modules,
      { kind: 'file', path: 'etc/kataref/modules', data: Buffer.from(names.join('\n') + '\n') },
      { kind: 'file', path: 'etc/kataref/kernel-version', data: Buffer.from(opts.kernelVersion + '\n') },
      { kind: 'file', path: 'init', data: Buffer.from(INITRAMFS_INIT), mode: 0o755 },
    ]
  })
}

/** The bare initramfs: busybox and an /init that prints BARE_MARKER and powers off. */
export async function buildBareInitramfs(opts: { cacheDir: string; progress: Progress; busybox: string }): Promise<InitramfsResult> {
  const hash = sha256('bare-v1', await hashFileMemo(opts.busybox), BARE_INIT)
  return buildArchive(opts.cacheDir, 'bare', hash, opts.progress, async () => [
    ...baseEntries(),
    ...busyboxEntries(opts.busybox),
    { kind: 'file', path: 'init', data: Buffer.from(BARE_INIT), mode: 0o755 },
  ])
}
