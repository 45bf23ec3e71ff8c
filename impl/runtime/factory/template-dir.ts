// The VM template directory (spec §7.1): `mkdir -p` (0700), a tmpfs mounted `nosuid,nodev` with
// `size=<memory+8>M` (8 MiB for the device state), a `memory` file truncated to the VM's memory size
// exactly, and the device-state file (`state` for QEMU, `state.json` for CLH). A template "exists"
// when both `memory` and the device-state file are present.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, closeSync, openSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { execa } from 'execa'
import { Code, KatarefError, ToolError } from '../../types/errors.ts'
import { onExitCleanup } from '../hypervisor/qemu/cleanup.ts'

/** Device-state allowance on the tmpfs, MiB. */
export const STATE_ALLOWANCE_MIB = 8
export const MEMORY_FILE = 'memory'
export const QEMU_STATE_FILE = 'state'
export const CLH_STATE_FILE = 'state.json'
/** kataref's record of the config the template was made with (for the mismatch check). */
export const TEMPLATE_META_FILE = 'template.json'

export type TemplateHypervisor = 'qemu' | 'clh'

export interface TemplatePaths {
  dir: string
  memory: string
  state: string
  meta: string
}

export function templatePaths(dir: string, hv: TemplateHypervisor = 'qemu'): TemplatePaths {
  const d = resolve(dir)
  return { dir: d, memory: join(d, MEMORY_FILE), state: join(d, hv === 'clh' ? CLH_STATE_FILE : QEMU_STATE_FILE), meta: join(d, TEMPLATE_META_FILE) }
}

/** tmpfs options for a template of `memoryMiB` (spec row 35: 512 → `size=520M`). */
export function tmpfsOptions(memoryMiB: number): string {
  if (!Number.isInteger(memoryMiB) || memoryMiB <= 0) throw new KatarefError(`template memory size must be a positive integer MiB, got ${memoryMiB}`, Code.INVALID_ARGUMENT)
  return `nosuid,nodev,size=${memoryMiB + STATE_ALLOWANCE_MIB}M`
}

/** Template check: both the memory file and the device-state file exist. */
export function templateExists(dir: string, hv: TemplateHypervisor = 'qemu'): boolean {
  const p = templatePaths(dir, hv)
  return existsSync(p.memory) && existsSync(p.state)
}

/** Is `dir` a mount point (per /proc/self/mountinfo)? */
export function isMountPoint(dir: string): boolean {
  const d = resolve(dir)
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === d)
  } catch {
    return false
  }
}

export interface PrepareOptions {
  memoryMiB: number
  hv?: TemplateHypervisor
  /** Mount the tmpfs (needs root). Default true. */
  mount?: boolean
}

/**
 * Create the template dir and its memory file. Refuses an existing template. Registers an exit hook
 * that unmounts and removes the dir if the process dies before `release()` of the returned handle.
 */
export async function prepareTemplateDir(dir: string, opts: PrepareOptions): Promise<{ paths: TemplatePaths; mounted: boolean; release(): void }> {
  const hv = opts.hv ?? 'qemu'
  const paths = templatePaths(dir, hv)
  if (templateExists(paths.dir, hv)) throw new KatarefError(`There is already a VM template in ${paths.dir}`, Code.ALREADY_EXISTS, { dir: paths.dir })
  const options = tmpfsOptions(opts.memoryMiB)
  const existed = existsSync(paths.dir)
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 })
  let mounted = false
  const unregister = onExitCleanup(() => destroyTemplateDirSync(paths.dir, { removeDir: !existed }))
  try {
    if (opts.mount ?? true) {
      if (!isMountPoint(paths.dir)) {
        const r = await execa('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', paths.dir], { reject: false })
        if (r.exitCode !== 0) throw new ToolError('mount', `tmpfs on ${paths.dir} (${options}): ${String(r.stderr).trim()}`)
      }
      mounted = true
    }
    closeSync(openSync(paths.memory, 'w', 0o600))
    truncateSync(paths.memory, opts.memoryMiB * 1024 * 1024)
  } catch (e) {
    unregister()
    destroyTemplateDirSync(paths.dir, { removeDir: !existed })
    throw e
  }
  return { paths, mounted, release: unregister }
}

/** Unmount (if mounted) and remove the template's files; the dir itself too unless `removeDir: false`. */
export function destroyTemplateDirSync(dir: string, opts: { removeDir?: boolean } = {}): void {
  const d = resolve(dir)
  // umount -l: a template VM that is still being killed may hold the memory file open.
  for (let i = 0; i < 4 && isMountPoint(d); i++) {
    try {
      execaSyncUmount(d)
    } catch {
      break
    }
  }
  if (opts.removeDir ?? true) rmSync(d, { recursive: true, force: true })
  else for (const f of [MEMORY_FILE, QEMU_STATE_FILE, CLH_STATE_FILE, TEMPLATE_META_FILE]) rmSync(join(d, f), { force: true })
}

function execaSyncUmount(d: string): void {
  // Synchronous on purpose: also runs from exit/signal hooks.
  const r = spawnSync('umount', ['-l', d], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
}

export function writeTemplateMeta(paths: TemplatePaths, meta: unknown): void {
  writeFileSync(paths.meta, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 })
}

export function readTemplateMeta<T>(paths: TemplatePaths): T | undefined {
  try {
    return JSON.parse(readFileSync(paths.meta, 'utf8')) as T
  } catch {
    return undefined
  }
}

export function fileSize(p: string): number | undefined {
  try {
    return statSync(p).size
  } catch {
    return undefined
  }
}
