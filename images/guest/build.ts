// buildGuestImages: kernel (package or override), full + bare initramfs, EROFS rootfs — all cached
// by content, all paths absolute.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { bundleAgent, DEFAULT_AGENT_ENTRY } from './agent-bundle.ts'
import { defaultCacheDir, ensureDir, silentProgress, stderrProgress, type Progress } from './cache.ts'
import { buildBareInitramfs, buildInitramfs, findBusybox, moduleGuestName } from './initramfs.ts'
import { bootableKernel, GUEST_MODULES, moduleLoadOrder, resolveKernel, type KernelFormat } from './kernel.ts'
import { buildRootfs, findExecutable } from './rootfs.ts'

export interface BuildGuestImagesOptions {
  /** Cache folder (default KATAREF_CACHE_DIR or <repo>/.cache/guest). */
  cacheDir?: string
  /** Agent entry to bundle (default impl/agent/main.ts). `null` builds a rootfs without an agent. */
  agentEntry?: string | null
  /** Node binary to ship (default process.execPath). */
  node?: string
  /** Kernel meta package (default by distribution, env KATAREF_KERNEL_PACKAGE). */
  kernelPackage?: string
  /** vmlinuz + modules folder instead of the package (default env KATAREF_KERNEL / KATAREF_MODULES). */
  kernelPath?: string
  modulesPath?: string
  /** `auto` (default, env KATAREF_KERNEL_FORMAT): the PVH ELF vmlinux when the kernel supports it, else the vmlinuz. */
  kernelFormat?: KernelFormat
  /** Modules to load at boot (dependencies are added). */
  modules?: readonly string[]
  /** Progress sink; default: lines on stderr. `false` = silent. */
  progress?: Progress | false
}

export interface GuestImages {
  /** What to pass to QEMU's -kernel: the PVH vmlinux (fast under TCG) or the vmlinuz. */
  kernel: string
  kernelFormat: 'bzImage' | 'pvh'
  /** The distribution's compressed kernel (bzImage). */
  vmlinuz: string
  initramfs: string
  rootfs: string
  kernelVersion: string
  bareInitramfs: string
  /** Guest module files in load order (basenames as loaded by /init). */
  modules: string[]
  /** Whether the agent bundle is in the rootfs (false when the entry was missing or null). */
  hasAgent: boolean
  cached: { kernel: boolean; initramfs: boolean; bareInitramfs: boolean; rootfs: boolean }
  hashes: { initramfs: string; bareInitramfs: string; rootfs: string }
  /** Milliseconds per step. */
  timings: { kernelMs: number; initramfsMs: number; rootfsMs: number; totalMs: number }
}

export async function buildGuestImages(opts: BuildGuestImagesOptions = {}): Promise<GuestImages> {
  const progress: Progress = opts.progress === false ? silentProgress : (opts.progress ?? stderrProgress)
  const cacheDir = ensureDir(resolve(opts.cacheDir ?? defaultCacheDir()))
  const t0 = Date.now()

  const kernel = await resolveKernel({
    cacheDir,
    progress,
    metaPackage: opts.kernelPackage,
    kernelPath: opts.kernelPath,
    modulesPath: opts.modulesPath,
  })
  const envFormat = process.env.KATAREF_KERNEL_FORMAT
  const format: KernelFormat = opts.kernelFormat ?? (envFormat === 'bzImage' || envFormat === 'pvh' ? envFormat : 'auto')
  const bootable = await bootableKernel(kernel, format, progress)
  const t1 = Date.now()

  const busybox = findBusybox()
  const order = await moduleLoadOrder(kernel.modulesDir, opts.modules ?? GUEST_MODULES)
  const [initramfs, bare] = await Promise.all([
    buildInitramfs({ cacheDir, progress, busybox, moduleOrder: order, kernelVersion: kernel.version }),
    buildBareInitramfs({ cacheDir, progress, busybox }),
  ])
  const t2 = Date.now()

  const entry = opts.agentEntry === undefined ? DEFAULT_AGENT_ENTRY : opts.agentEntry
  let agentBundle: string | undefined
  if (entry !== null) {
    if (existsSync(entry)) {
      agentBundle = await bundleAgent(resolve(entry))
      progress(`agent bundle ${entry}: ${Math.round(agentBundle.length / 1024)} KiB`)
    } else {
      progress(`agent entry ${entry} not found: building a rootfs without the agent`)
    }
  }
  const rootfs = await buildRootfs({
    cacheDir,
    progress,
    inputs: {
      node: resolve(opts.node ?? process.execPath),
      busybox,
      veritysetup: findExecutable('veritysetup', ['/usr/sbin/veritysetup', '/sbin/veritysetup', '/usr/bin/veritysetup']),
      agentBundle,
    },
  })
  const t3 = Date.now()

  return {
    kernel: bootable.path,
    kernelFormat: bootable.format,
    vmlinuz: kernel.vmlinuz,
    initramfs: initramfs.path,
    rootfs: rootfs.path,
    kernelVersion: kernel.version,
    bareInitramfs: bare.path,
    modules: order.map(moduleGuestName),
    hasAgent: agentBundle !== undefined,
    cached: { kernel: kernel.cached, initramfs: initramfs.cached, bareInitramfs: bare.cached, rootfs: rootfs.cached },
    hashes: { initramfs: initramfs.hash, bareInitramfs: bare.hash, rootfs: rootfs.hash },
    timings: { kernelMs: t1 - t0, initramfsMs: t2 - t1, rootfsMs: t3 - t2, totalMs: t3 - t0 },
  }
}
