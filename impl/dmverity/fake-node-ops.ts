// FakeNodeOps: an in-memory tree of directories and device nodes, with an operation log and
// per-operation failure injection, for unit tests of DM node handling and storage rollback.
import { dirname } from 'node:path'
import type { NodeOps } from './node-ops.ts'

export interface FakeNode {
  kind: 'blk' | 'file'
  mode: number
  major: number
  minor: number
}

export type FakeNodeOp = 'mkdir' | 'unlink' | 'rmdir' | 'mknod'

export class FakeNodeOps implements NodeOps {
  readonly dirs = new Set<string>(['/'])
  readonly nodes = new Map<string, FakeNode>()
  readonly log: string[] = []
  private failures: { op: FakeNodeOp; path: string | RegExp; errno: number; left: number }[] = []

  failOn(op: FakeNodeOp, path: string | RegExp, errno = 5, times = Number.POSITIVE_INFINITY): this {
    this.failures.push({ op, path, errno, left: times })
    return this
  }

  clearFailures(): void {
    this.failures = []
  }

  /** Pretend a file/node exists (e.g. a partition device or a stale /dev/mapper node). */
  addNode(path: string, node: Partial<FakeNode> = {}): void {
    this.ensureDirs(dirname(path))
    this.nodes.set(path, { kind: 'blk', mode: 0o600, major: 0, minor: 0, ...node })
  }

  private check(op: FakeNodeOp, path: string): void {
    const f = this.failures.find((x) => x.left > 0 && x.op === op && (typeof x.path === 'string' ? x.path === path : x.path.test(path)))
    if (f) {
      f.left--
      throw Object.assign(new Error(`${op} ${path}: injected errno ${f.errno}`), { errno: f.errno })
    }
  }

  private ensureDirs(path: string): string[] {
    const created: string[] = []
    for (let p = path; !this.dirs.has(p); p = dirname(p)) created.unshift(p)
    for (const d of created) this.dirs.add(d)
    return created
  }

  async mkdirAll(path: string): Promise<string[]> {
    this.check('mkdir', path)
    if (this.nodes.has(path)) throw Object.assign(new Error(`mkdir ${path}: EEXIST (not a directory)`), { errno: 17 })
    const created = this.ensureDirs(path)
    if (created.length) this.log.push(`mkdir ${path}`)
    return created
  }

  async exists(path: string): Promise<boolean> {
    return this.dirs.has(path) || this.nodes.has(path)
  }

  async unlink(path: string): Promise<void> {
    this.check('unlink', path)
    if (!this.nodes.delete(path)) throw Object.assign(new Error(`unlink ${path}: ENOENT`), { errno: 2 })
    this.log.push(`unlink ${path}`)
  }

  async rmdirIfEmpty(path: string): Promise<boolean> {
    this.check('rmdir', path)
    if (!this.dirs.has(path) || path === '/') return false
    const prefix = path + '/'
    for (const d of this.dirs) if (d.startsWith(prefix)) return false
    for (const n of this.nodes.keys()) if (n.startsWith(prefix)) return false
    this.dirs.delete(path)
    this.log.push(`rmdir ${path}`)
    return true
  }

  async removeTree(path: string): Promise<void> {
    this.check('rmdir', path)
    const prefix = path + '/'
    for (const n of [...this.nodes.keys()]) if (n.startsWith(prefix)) this.nodes.delete(n)
    for (const d of [...this.dirs].sort().reverse()) if (d === path || d.startsWith(prefix)) this.dirs.delete(d)
    this.log.push(`rm -rf ${path}`)
  }

  async mknodBlock(path: string, mode: number, major: number, minor: number): Promise<void> {
    this.check('mknod', path)
    if (!this.dirs.has(dirname(path))) throw Object.assign(new Error(`mknod ${path}: ENOENT`), { errno: 2 })
    if (this.nodes.has(path) || this.dirs.has(path)) throw Object.assign(new Error(`mknod ${path}: EEXIST`), { errno: 17 })
    this.nodes.set(path, { kind: 'blk', mode, major, minor })
    this.log.push(`mknod ${path} b ${major}:${minor} 0${mode.toString(8)}`)
  }

  /** Everything under `prefix` (dirs and nodes), for "nothing left behind" assertions. */
  under(prefix: string): string[] {
    const p = prefix.endsWith('/') ? prefix : prefix + '/'
    return [...this.dirs, ...this.nodes.keys()].filter((x) => x === prefix || x.startsWith(p)).sort()
  }
}
