// cgroupfs manager for the guest (spec §2): creates the container cgroup, applies pids (init and exec
// processes), sets limits for the init process, removes the tree. Since 4e3d257dc0 an exec process goes
// to `<cgroup>/init` when that subcgroup exists on a unified (v2) hierarchy; the check runs at every
// apply and is never cached. Paths are composed with cgroupDir (leading slashes stripped, never
// path.resolve). Every write error names the file and the errno.
import { mkdir, readFile, readdir, rmdir, statfs, writeFile } from 'node:fs/promises'
import { KatarefError, Code } from '../../types/errors.ts'
import { errnoCode, exists } from '../fs-util.ts'
import { cgroupDir, subcgroupPath, INIT_SUBCGROUP } from './paths.ts'
import { sharesToWeight, swapV2 } from './convert.ts'
import type { LinuxResources } from '../../gen/oci_pb.ts'

export const CGROUP2_SUPER_MAGIC = 0x63677270
export const GUEST_CGROUP_ROOT = '/sys/fs/cgroup'

export class CgroupError extends KatarefError {
  constructor(
    message: string,
    readonly file: string,
    readonly errno: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, Code.INTERNAL, { file, errno }, options)
  }
}

/** Writes one cgroup control file; the error names the file, the value and the errno. */
export async function writeCgroupFile(file: string, value: string, what = `write ${JSON.stringify(value)} to`): Promise<void> {
  try {
    await writeFile(file, value)
  } catch (e) {
    const errno = errnoCode(e)
    throw new CgroupError(`${what} ${file}: ${errno ?? ''} ${(e as Error).message}`.replace(/\s+/g, ' ').trim(), file, errno, { cause: e })
  }
}

export type HierarchyMode = 'unified' | 'legacy' | 'hybrid'

/** statfs of the cgroup mount: cgroup2 → unified; a tmpfs with a `unified` child → hybrid; else legacy. */
export async function detectHierarchy(root: string): Promise<HierarchyMode> {
  const st = await statfs(root)
  if (Number(st.type) === CGROUP2_SUPER_MAGIC) return 'unified'
  try {
    const u = await statfs(`${root.replace(/\/+$/, '')}/unified`)
    if (Number(u.type) === CGROUP2_SUPER_MAGIC) return 'hybrid'
  } catch {}
  return 'legacy'
}

/**
 * The shared "init subcgroup exists" helper: true only on a unified hierarchy AND when
 * `<root>/<cpath without leading slashes>/init` exists (any file type: a non-directory `init` still
 * counts, as upstream; the later write then fails with ENOTDIR). Returns the subcgroup to use.
 */
export async function initSubcgroupFor(root: string, cpath: string, mode: HierarchyMode): Promise<string> {
  if (mode !== 'unified') return '/'
  return (await exists(`${cgroupDir(root, cpath)}/init`)) ? INIT_SUBCGROUP : '/'
}

export interface CgroupManagerOptions {
  root?: string
  /** Injected for host tests (a temp dir as a fake root); detected with statfs otherwise. */
  mode?: HierarchyMode
}

export class CgroupfsManager {
  readonly root: string
  private mode: HierarchyMode | undefined
  /** Files written, in order (diagnostics and tests). */
  readonly writes: { file: string; value: string }[] = []

  constructor(
    readonly cpath: string,
    opts: CgroupManagerOptions = {},
  ) {
    this.root = opts.root ?? GUEST_CGROUP_ROOT
    this.mode = opts.mode
  }

  async hierarchy(): Promise<HierarchyMode> {
    return (this.mode ??= await detectHierarchy(this.root))
  }

  get dir(): string {
    return cgroupDir(this.root, this.cpath)
  }

  private async write(file: string, value: string, what?: string): Promise<void> {
    await writeCgroupFile(file, value, what)
    this.writes.push({ file, value })
  }

  /**
   * Creates the container cgroup. On v2 the controllers available in each ancestor are enabled in that
   * ancestor's `cgroup.subtree_control` (never in the container cgroup itself, which holds processes).
   */
  async create(): Promise<void> {
    const mode = await this.hierarchy()
    const rel = this.dir.slice(this.root.replace(/\/+$/, '').length).split('/').filter(Boolean)
    if (rel.length === 0) throw new CgroupError('refusing to use the cgroup root as a container cgroup', this.dir, undefined)
    let cur = this.root.replace(/\/+$/, '')
    for (const part of rel) {
      if (mode === 'unified') await this.enableControllers(cur)
      cur = `${cur}/${part}`
      try {
        await mkdir(cur)
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw new CgroupError(`create cgroup ${cur}: ${errnoCode(e)}`, cur, errnoCode(e), { cause: e })
      }
    }
  }

  private async enableControllers(dir: string): Promise<void> {
    let available: string[]
    try {
      available = (await readFile(`${dir}/cgroup.controllers`, 'utf8')).split(/\s+/).filter(Boolean)
    } catch {
      return
    }
    const enabled = new Set((await readFile(`${dir}/cgroup.subtree_control`, 'utf8').catch(() => '')).split(/\s+/).filter(Boolean))
    const wanted = available.filter((c) => ['cpu', 'memory', 'pids', 'hugetlb', 'io', 'cpuset'].includes(c) && !enabled.has(c))
    for (const c of wanted) {
      // One controller per write so one refusal does not hide the others.
      await this.write(`${dir}/cgroup.subtree_control`, `+${c}`).catch(() => {})
    }
  }

  /** The directory a pid goes to at this moment (init subcgroup evaluated now). */
  async targetDir(): Promise<string> {
    const sub = await initSubcgroupFor(this.root, this.cpath, await this.hierarchy())
    return cgroupDir(this.root, subcgroupPath(this.cpath, sub))
  }

  /** apply(pid): writes the pid to `<cgroup>[/init]/cgroup.procs`; returns the file written. */
  async apply(pid: number): Promise<string> {
    const file = `${await this.targetDir()}/cgroup.procs`
    await this.write(file, String(pid), `add task ${pid} to cgroup`)
    return file
  }

  /** set(resources): limits, for the init process only. Values the hierarchy lacks are skipped. */
  async set(r: LinuxResources | undefined): Promise<void> {
    if (!r) return
    if ((await this.hierarchy()) !== 'unified') return
    const d = this.dir
    const present = async (f: string) => exists(`${d}/${f}`)
    if (r.CPU) {
      if (r.CPU.Shares && (await present('cpu.weight'))) await this.write(`${d}/cpu.weight`, String(sharesToWeight(r.CPU.Shares)))
      if (r.CPU.Quota && r.CPU.Quota !== 0n && (await present('cpu.max'))) {
        const period = r.CPU.Period && r.CPU.Period !== 0n ? r.CPU.Period : 100000n
        await this.write(`${d}/cpu.max`, `${r.CPU.Quota > 0n ? r.CPU.Quota : 'max'} ${period}`)
      }
    }
    if (r.Memory) {
      const limit = r.Memory.Limit ?? 0n
      if (limit !== 0n && (await present('memory.max'))) await this.write(`${d}/memory.max`, limit < 0n ? 'max' : String(limit))
      const swap = r.Memory.Swap ?? 0n
      if (swap !== 0n && (await present('memory.swap.max'))) {
        const v = swapV2(limit, swap)
        await this.write(`${d}/memory.swap.max`, v < 0n ? 'max' : String(v))
      }
    }
    if (r.Pids && r.Pids.Limit !== 0n && (await present('pids.max'))) await this.write(`${d}/pids.max`, r.Pids.Limit < 0n ? 'max' : String(r.Pids.Limit))
    for (const h of r.HugepageLimits ?? []) {
      const f = `hugetlb.${h.Pagesize}.max`
      if (await present(f)) await this.write(`${d}/${f}`, String(h.Limit))
    }
  }

  /** Pids directly in this cgroup and every descendant. */
  async pids(): Promise<number[]> {
    const out: number[] = []
    const walk = async (dir: string) => {
      const procs = await readFile(`${dir}/cgroup.procs`, 'utf8').catch(() => '')
      out.push(...procs.split('\n').filter(Boolean).map(Number))
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(`${dir}/${e.name}`)
    }
    await walk(this.dir)
    return out
  }

  /** Kills everything in the tree (cgroup.kill when the kernel has it, SIGKILL per pid otherwise). */
  async killAll(): Promise<void> {
    if (await exists(`${this.dir}/cgroup.kill`)) {
      await this.write(`${this.dir}/cgroup.kill`, '1').catch(() => {})
    }
    for (const pid of await this.pids()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }

  /** Removes the cgroup and all its descendants, deepest first (retries while tasks are still exiting). */
  async destroy(deadlineMs = 5_000): Promise<void> {
    if (!(await exists(this.dir))) return
    const end = Date.now() + deadlineMs
    const removeTree = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await removeTree(`${dir}/${e.name}`)
      for (;;) {
        try {
          await rmdir(dir)
          return
        } catch (e) {
          const errno = errnoCode(e)
          if (errno === 'ENOENT') return
          if (errno === 'EBUSY' && Date.now() < end) {
            await new Promise((r) => setTimeout(r, 50))
            continue
          }
          throw new CgroupError(`remove cgroup ${dir}: ${errno}`, dir, errno, { cause: e })
        }
      }
    }
    await removeTree(this.dir)
  }
}
