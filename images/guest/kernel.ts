// The guest kernel: the distribution's kernel package, downloaded with `apt-get download` into the
// cache and unpacked with `dpkg -x` (never installed on the host), or a vmlinuz + modules folder
// given by KATAREF_KERNEL + KATAREF_MODULES. Also computes the module load order with
// `depmod -b` + `modprobe --show-depends`.
import { existsSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { execa } from 'execa'
import { InvalidInputError, ToolError, errorMessage } from '../../impl/types/errors.ts'
import { atomicEntry, ensureDir, humanSize, scratchDir, sha256, type Progress } from './cache.ts'

/** Modules the guest needs, loaded (with their dependencies) by the initramfs in this order. */
export const GUEST_MODULES = [
  'virtio_pci',
  'virtio_blk',
  'virtio_console',
  'virtio_rng',
  'erofs',
  'dm-verity',
  '9p',
  '9pnet_virtio',
  'overlay',
  'loop',
  'vfat',
  'nls_cp437',
  'nls_iso8859-1',
  'sd_mod',
  'virtio_scsi',
  'virtio_net',
] as const

export interface GuestKernel {
  /** Absolute path of the vmlinuz. */
  vmlinuz: string
  /** Absolute path of `lib/modules/<version>` (holds modules.dep after depmod). */
  modulesDir: string
  version: string
  /** `<package>_<version>` or `KATAREF_KERNEL` when overridden. */
  source: string
  cached: boolean
}

export interface KernelOptions {
  cacheDir: string
  progress: Progress
  /** Meta package to follow (default: by distribution; env KATAREF_KERNEL_PACKAGE). */
  metaPackage?: string
  /** vmlinuz + modules dir override (default env KATAREF_KERNEL + KATAREF_MODULES). */
  kernelPath?: string
  modulesPath?: string
}

function distroId(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8')
    const m = /^ID=("?)([^"\n]*)\1$/m.exec(text)
    return m?.[2] ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

/** The meta package whose dependency names the current kernel image package. */
export function defaultMetaPackage(id = distroId()): string {
  if (process.env.KATAREF_KERNEL_PACKAGE) return process.env.KATAREF_KERNEL_PACKAGE
  if (id === 'ubuntu') return 'linux-image-generic'
  return 'linux-image-amd64'
}

async function tool(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  try {
    const r = await execa(cmd, args, { cwd: opts.cwd, env: { LC_ALL: 'C' } })
    return r.stdout
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? ''
    throw new ToolError(cmd, `${args.join(' ')} failed: ${stderr.trim() || errorMessage(e)}`, { args }, { cause: e })
  }
}

/** Parses `apt-cache depends` output into the packages named on `Depends:` lines. */
export function parseAptDepends(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*\|?Depends:\s*(\S+)/.exec(line)
    if (m?.[1] && !m[1].startsWith('<')) out.push(m[1])
  }
  return out
}

/** Parses the `Version:` field of `apt-cache show` output (first stanza). */
export function parseAptVersion(text: string): string | undefined {
  return /^Version:\s*(\S+)/m.exec(text)?.[1]
}

export interface KernelPackages {
  /** The linux-image-<version> package. */
  image: string
  /** Extra module packages (Ubuntu: linux-modules-<v>, linux-modules-extra-<v>). */
  modules: string[]
  version: string
  debVersion: string
}

/** Resolves the meta package to the concrete image (+ modules) packages and their version. */
export async function resolveKernelPackages(meta: string): Promise<KernelPackages> {
  let depends: string[]
  try {
    depends = parseAptDepends(await tool('apt-cache', ['depends', '--no-recommends', '--no-suggests', meta]))
  } catch (e) {
    throw new ToolError(
      'apt-cache',
      `cannot resolve kernel meta package ${meta} (${errorMessage(e)}); run apt-get update, set KATAREF_KERNEL_PACKAGE, ` +
        'or point KATAREF_KERNEL and KATAREF_MODULES at a vmlinuz and its modules folder',
      { meta },
      { cause: e },
    )
  }
  const image = depends.find((d) => /^linux-image-(unsigned-)?\d/.test(d))
  if (!image) {
    throw new ToolError('apt-cache', `kernel meta package ${meta} depends on no linux-image-<version> package (got: ${depends.join(', ') || 'nothing'}); set KATAREF_KERNEL_PACKAGE or KATAREF_KERNEL + KATAREF_MODULES`, { meta, depends })
  }
  const version = image.replace(/^linux-image-(unsigned-)?/, '')
  // Ubuntu splits modules out: linux-modules-<v> (dependency of the image) and linux-modules-extra-<v>.
  const [imageDepsText, showText] = await Promise.all([
    tool('apt-cache', ['depends', '--no-recommends', '--no-suggests', image]),
    tool('apt-cache', ['show', '--no-all-versions', image]),
  ])
  const imageDeps = parseAptDepends(imageDepsText)
  const modules = [...new Set([...depends, ...imageDeps].filter((d) => d === `linux-modules-${version}` || d === `linux-modules-extra-${version}`))]
  const debVersion = parseAptVersion(showText)
  if (!debVersion) throw new ToolError('apt-cache', `no Version for ${image}`, { image })
  return { image, modules, version, debVersion }
}

/** Identifies the state of apt's package lists (names, sizes, mtimes), to memoise resolution. */
export function aptListsStamp(dir = '/var/lib/apt/lists'): string {
  try {
    const parts = readdirSync(dir)
      .sort()
      .map((f) => {
        const st = statSync(join(dir, f))
        return `${f}:${st.size}:${st.mtimeMs}`
      })
    return sha256(...parts)
  } catch {
    return 'no-lists'
  }
}

/** resolveKernelPackages, memoised in the cache until apt's lists change (apt-cache takes seconds). */
export async function resolveKernelPackagesCached(cacheDir: string, meta: string): Promise<KernelPackages> {
  const stamp = aptListsStamp()
  const memo = join(cacheDir, 'kernel', `resolved-${meta}.json`)
  try {
    const m = JSON.parse(readFileSync(memo, 'utf8')) as { stamp: string; pkgs: KernelPackages }
    if (m.stamp === stamp && m.pkgs?.image) return m.pkgs
  } catch {
    /* no memo yet */
  }
  const pkgs = await resolveKernelPackages(meta)
  ensureDir(join(cacheDir, 'kernel'))
  const tmp = `${memo}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ stamp, pkgs }, null, 2) + '\n')
  await rename(tmp, memo)
  return pkgs
}

function findVersionDir(root: string): string {
  for (const base of [join(root, 'lib', 'modules'), join(root, 'usr', 'lib', 'modules')]) {
    if (!existsSync(base)) continue
    const versions = readdirSync(base).filter((v) => statSync(join(base, v)).isDirectory())
    if (versions.length === 1 && versions[0]) return join(base, versions[0])
    if (versions.length > 1) throw new ToolError('dpkg', `several kernel versions under ${base}: ${versions.join(', ')}`)
  }
  throw new ToolError('dpkg', `no lib/modules/<version> folder under ${root}`)
}

/** Downloads (if needed) and unpacks the kernel package into `<cache>/kernel/<pkg>_<ver>/root`. */
export async function resolveKernel(opts: KernelOptions): Promise<GuestKernel> {
  const kernelPath = opts.kernelPath ?? process.env.KATAREF_KERNEL
  const modulesPath = opts.modulesPath ?? process.env.KATAREF_MODULES
  if (kernelPath || modulesPath) {
    if (!kernelPath || !modulesPath) {
      throw new InvalidInputError('KATAREF_KERNEL/KATAREF_MODULES', 'set both (a vmlinuz and its lib/modules/<version> folder) or neither')
    }
    const vmlinuz = resolve(kernelPath)
    const modulesDir = resolve(modulesPath)
    if (!existsSync(vmlinuz)) throw new InvalidInputError('KATAREF_KERNEL', `${vmlinuz} does not exist`)
    if (!existsSync(join(modulesDir, 'modules.order')) && !existsSync(join(modulesDir, 'kernel'))) {
      throw new InvalidInputError('KATAREF_MODULES', `${modulesDir} is not a lib/modules/<version> folder`)
    }
    opts.progress(`using kernel ${vmlinuz} with modules ${modulesDir} (KATAREF_KERNEL/KATAREF_MODULES)`)
    return { vmlinuz, modulesDir, version: basename(modulesDir), source: 'KATAREF_KERNEL', cached: true }
  }

  const meta = opts.metaPackage ?? defaultMetaPackage()
  let pkgs: KernelPackages
  try {
    pkgs = await resolveKernelPackagesCached(opts.cacheDir, meta)
  } catch (e) {
    // Fresh machines (containers, CI) often have no package lists yet: update once and retry.
    if (process.env.KATAREF_NO_APT_UPDATE === '1') throw e
    opts.progress(`${errorMessage(e).split(';')[0]}; running apt-get update and retrying`)
    try {
      await tool('apt-get', ['update', '-q'])
    } catch (u) {
      throw new ToolError('apt-get', `update failed (${errorMessage(u)}) after: ${errorMessage(e)}`, { meta }, { cause: e })
    }
    pkgs = await resolveKernelPackagesCached(opts.cacheDir, meta)
  }
  const entryName = `${pkgs.image}_${pkgs.debVersion}`
  const entry = join(opts.cacheDir, 'kernel', entryName)
  const t0 = Date.now()
  const built = await atomicEntry(entry, async (tmp) => {
    ensureDir(tmp)
    const scratch = await scratchDir(opts.cacheDir, 'kernel-deb')
    try {
      const names = [pkgs.image, ...pkgs.modules]
      opts.progress(`downloading ${names.join(', ')} (${pkgs.debVersion})`)
      const td = Date.now()
      await tool('apt-get', ['download', ...names.map((n) => `${n}=${pkgs.debVersion}`)], { cwd: scratch.path })
      const debs = readdirSync(scratch.path).filter((f) => f.endsWith('.deb'))
      const size = debs.reduce((a, f) => a + statSync(join(scratch.path, f)).size, 0)
      opts.progress(`downloaded ${debs.length} package(s), ${humanSize(size)} in ${Date.now() - td} ms; unpacking`)
      const tu = Date.now()
      const root = join(tmp, 'root')
      for (const deb of debs) await tool('dpkg', ['-x', join(scratch.path, deb), root])
      opts.progress(`unpacked in ${Date.now() - tu} ms`)
      // depmod -b wants <root>/lib/modules; merged-/usr packages ship usr/lib/modules.
      if (!existsSync(join(root, 'lib', 'modules')) && existsSync(join(root, 'usr', 'lib', 'modules'))) {
        symlinkSync('usr/lib', join(root, 'lib'))
      }
      await tool('depmod', ['-b', root, pkgs.version])
      await writeFile(join(tmp, 'meta.json'), JSON.stringify({ meta, ...pkgs, downloadedAt: new Date().toISOString() }, null, 2) + '\n')
    } finally {
      await scratch.done()
    }
  })
  if (built) opts.progress(`kernel ${entryName} ready in ${Date.now() - t0} ms`)
  else opts.progress(`reusing cached kernel ${entryName}`)
  const root = join(entry, 'root')
  const vmlinuz = join(root, 'boot', `vmlinuz-${pkgs.version}`)
  if (!existsSync(vmlinuz)) throw new ToolError('dpkg', `package ${pkgs.image} has no boot/vmlinuz-${pkgs.version}`)
  return { vmlinuz, modulesDir: findVersionDir(root), version: pkgs.version, source: entryName, cached: !built }
}

/**
 * The ordered, de-duplicated list of module files to insmod for `modules` (dependencies first);
 * built-in modules are skipped. Paths are absolute.
 */
export async function moduleLoadOrder(modulesDir: string, modules: readonly string[] = GUEST_MODULES): Promise<string[]> {
  const version = basename(modulesDir)
  const libModules = resolve(modulesDir, '..')
  const root = resolve(libModules, '..', '..')
  if (!existsSync(join(modulesDir, 'modules.dep'))) await tool('depmod', ['-b', root, version])
  const order: string[] = []
  for (const m of modules) {
    const text = await tool('modprobe', ['--show-depends', '--ignore-install', '-d', root, '-S', version, m]).catch((e: unknown) => {
      throw new ToolError('modprobe', `cannot find module ${m} for kernel ${version} under ${root}`, { module: m }, { cause: e })
    })
    for (const line of text.split('\n')) {
      const [kind, path] = line.trim().split(/\s+/)
      if (kind === 'insmod' && path && !order.includes(path)) order.push(path)
    }
  }
  return order
}

const MAGICS: Array<{ name: string; magic: Buffer; cmd: [string, string[]] }> = [
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), cmd: ['xz', ['-dc', '--single-stream']] },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), cmd: ['zstd', ['-dcq']] },
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), cmd: ['gzip', ['-dc']] },
]

/**
 * Extracts the uncompressed ELF vmlinux from a bzImage (the payload is one xz/zstd/gzip stream).
 * Returns undefined when no stream decompresses to an ELF image.
 */
export async function extractVmlinux(bzImage: Buffer): Promise<Buffer | undefined> {
  for (const m of MAGICS) {
    let off = bzImage.indexOf(m.magic)
    for (let tries = 0; off >= 0 && tries < 4; tries++, off = bzImage.indexOf(m.magic, off + 1)) {
      // Trailing bytes after the stream make some decompressors exit non-zero; judge by the output.
      const r = await execa(m.cmd[0], m.cmd[1], { input: bzImage.subarray(off), encoding: 'buffer', reject: false, stripFinalNewline: false })
      const out = Buffer.from(r.stdout as Uint8Array)
      if (out.length > 1 << 20 && out.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return out
    }
  }
  return undefined
}

/** True when the kernel config next to the vmlinuz (boot/config-<version>) enables PVH entry. */
export function kernelSupportsPvh(vmlinuz: string, version: string): boolean {
  const config = join(vmlinuz, '..', `config-${version}`)
  try {
    return /^CONFIG_PVH=y$/m.test(readFileSync(config, 'utf8'))
  } catch {
    return false
  }
}

export type KernelFormat = 'auto' | 'bzImage' | 'pvh'

/**
 * The image QEMU should boot. With PVH (CONFIG_PVH=y) QEMU boots the ELF vmlinux directly and
 * skips the in-guest decompression: under TCG that saves several seconds per boot. The vmlinux is
 * extracted once into the kernel's cache entry. `bzImage`, or an unsupported kernel, keeps the vmlinuz.
 */
export async function bootableKernel(k: GuestKernel, format: KernelFormat, progress: Progress): Promise<{ path: string; format: 'bzImage' | 'pvh' }> {
  if (format === 'bzImage' || k.source === 'KATAREF_KERNEL') return { path: k.vmlinuz, format: 'bzImage' }
  if (format === 'auto' && !kernelSupportsPvh(k.vmlinuz, k.version)) return { path: k.vmlinuz, format: 'bzImage' }
  const target = join(k.vmlinuz, '..', '..', '..', `vmlinux-pvh-${k.version}`)
  const t0 = Date.now()
  let found = true
  const built = await atomicEntry(target, async (tmp) => {
    const elf = await extractVmlinux(readFileSync(k.vmlinuz))
    if (!elf) {
      found = false
      throw new ToolError('extract-vmlinux', `no xz/zstd/gzip payload with an ELF image in ${k.vmlinuz}`)
    }
    await writeFile(tmp, elf)
    progress(`extracted PVH vmlinux (${humanSize(elf.length)}) in ${Date.now() - t0} ms`)
  }).catch((e: unknown) => {
    if (format === 'pvh' || found) throw e
    progress(`no PVH vmlinux: ${errorMessage(e)}; booting the vmlinuz`)
    return undefined
  })
  if (built === undefined) return { path: k.vmlinuz, format: 'bzImage' }
  return { path: target, format: 'pvh' }
}
