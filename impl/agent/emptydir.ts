// Agent side of Kubernetes emptyDir storages (spec §5 "Agent side"): `local` (a directory with
// mode/fsgid), `ephemeral` tmpfs (options except fsgid dropped; fsgid → group + setgid) and
// `ephemeral` hugetlbfs (pagesize/size in bytes → reserve size/pagesize pages in
// /sys/kernel/mm/hugepages/hugepages-<kB>kB/nr_hugepages, read back, fail if short, then mount).
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { Code, KatarefError } from '../types/errors.ts'

export class EmptyDirError extends KatarefError {
  constructor(message: string, code: Code = Code.INVALID_ARGUMENT, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, context, options)
  }
}

export interface EmptyDirStorage {
  driver: string
  source: string
  fstype: string
  options: string[]
  mountPoint: string
}

export const EMPTYDIR_DRIVERS = ['local', 'ephemeral']

/** Options as `key=value` with exactly one `=` (comma-separated entries split too); others ignored. */
export function parseKeyValueOptions(options: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const o of options.flatMap((x) => x.split(','))) {
    const parts = o.split('=')
    if (parts.length !== 2) continue
    out.set(parts[0]!, parts[1]!)
  }
  return out
}

/** pagesize= and size= in bytes (anywhere in the options); either missing or non-numeric → error. */
export function hugepageParams(options: readonly string[]): { pageSize: bigint; size: bigint } {
  const kv = parseKeyValueOptions(options)
  const num = (k: string) => {
    const v = kv.get(k)
    if (v === undefined || !/^\d+$/.test(v)) throw new EmptyDirError(`hugepages storage: option ${k}= missing or not a number of bytes (${JSON.stringify(options)})`)
    return BigInt(v)
  }
  const pageSize = num('pagesize')
  const size = num('size')
  if (pageSize === 0n) throw new EmptyDirError('hugepages storage: pagesize=0')
  return { pageSize, size }
}

export function nrHugepagesPath(pageSize: bigint, sysRoot = '/sys'): string {
  return `${sysRoot}/kernel/mm/hugepages/hugepages-${pageSize / 1024n}kB/nr_hugepages`
}

export interface EmptyDirEnv {
  mount(source: string, target: string, fstype: string, options: string[]): Promise<void>
  sysRoot?: string
}

const run = promisify(execFile)
export const busyboxMount: EmptyDirEnv['mount'] = async (source, target, fstype, options) => {
  const bin = existsSync('/bin/busybox') ? '/bin/busybox' : 'mount'
  const args = [...(bin === 'mount' ? [] : ['mount']), '-t', fstype, ...(options.length ? ['-o', options.join(',')] : []), source, target]
  try {
    await run(bin, args)
  } catch (e) {
    throw new EmptyDirError(`mount -t ${fstype} ${source} ${target}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`, Code.INTERNAL, { source, target, fstype }, { cause: e })
  }
}

async function applyFsgid(path: string, kv: Map<string, string>): Promise<void> {
  const g = kv.get('fsgid')
  if (g === undefined) return
  if (!/^\d+$/.test(g)) throw new EmptyDirError(`invalid fsgid ${JSON.stringify(g)}`)
  await chown(path, -1, Number(g))
  const st = await stat(path)
  await chmod(path, (st.mode & 0o7777) | 0o2000)
}

/** Handles one `local` or `ephemeral` storage; returns the mount point when something was mounted. */
export async function handleEmptyDirStorage(s: EmptyDirStorage, env: EmptyDirEnv = { mount: busyboxMount }): Promise<{ mounted?: string }> {
  if (s.mountPoint === '' || !s.mountPoint.startsWith('/')) throw new EmptyDirError(`storage mount_point ${JSON.stringify(s.mountPoint)} is not absolute`)
  const kv = parseKeyValueOptions(s.options)
  if (s.driver === 'local') {
    await mkdir(s.mountPoint, { recursive: true })
    const mode = kv.get('mode')
    await applyFsgid(s.mountPoint, kv)
    if (mode !== undefined) {
      if (!/^[0-7]+$/.test(mode)) throw new EmptyDirError(`invalid mode ${JSON.stringify(mode)}`)
      await chmod(s.mountPoint, parseInt(mode, 8) | (kv.has('fsgid') ? 0o2000 : 0))
    }
    return {}
  }
  if (s.driver !== 'ephemeral') throw new EmptyDirError(`storage driver ${s.driver} is not an emptyDir driver`, Code.UNIMPLEMENTED)
  await mkdir(s.mountPoint, { recursive: true })
  if (s.fstype === 'hugetlbfs') {
    const { pageSize, size } = hugepageParams(s.options)
    const want = size / pageSize
    const file = nrHugepagesPath(pageSize, env.sysRoot)
    try {
      await writeFile(file, String(want))
    } catch (e) {
      throw new EmptyDirError(`write ${want} to ${file}: ${(e as NodeJS.ErrnoException).code}`, Code.INTERNAL, { file }, { cause: e })
    }
    const got = BigInt((await readFile(file, 'utf8')).trim() || '0')
    if (got < want) throw new EmptyDirError(`hugepages: asked for ${want} pages of ${pageSize} bytes in ${file}, the kernel allocated ${got}`, Code.RESOURCE_EXHAUSTED, { file, want: String(want), got: String(got) })
    await env.mount(s.source || 'nodev', s.mountPoint, 'hugetlbfs', [`pagesize=${pageSize}`, `size=${size}`])
    return { mounted: s.mountPoint }
  }
  await env.mount(s.source || 'tmpfs', s.mountPoint, s.fstype || 'tmpfs', [])
  await applyFsgid(s.mountPoint, kv)
  return { mounted: s.mountPoint }
}
