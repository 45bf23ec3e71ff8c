// The guest rootfs: a deterministic EROFS image (mkfs.erofs -T0 --all-root -U <uuid from hash>)
// holding the host's node binary and every library ldd lists, static busybox with applet links,
// veritysetup + libraries, the agent bundle + koffi, the boot scripts and minimal /etc.
// Cached by the hash of all of that.
import { chmodSync, copyFileSync, existsSync, mkdirSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { ToolError, errorMessage } from '../../impl/types/errors.ts'
import { koffiFiles } from './agent-bundle.ts'
import { atomicEntry, hashFileMemo, humanSize, pruneEntries, scratchDir, sha256, touchEntry, type Progress } from './cache.ts'
import { busyboxAppletLinks } from './initramfs.ts'
import { AGENT_GUEST_PATH, AGENT_RUN, DEBUG_SHELL, ETC_GROUP, ETC_PASSWD, INITTAB, RC_SYSINIT } from './scripts.ts'

/** Rootfs images kept in the cache (most recently used first). */
export const ROOTFS_KEEP = 6

/** Parses `ldd` output into the absolute library paths it names (vdso skipped). */
export function parseLdd(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    const arrow = /=>\s*(\/\S+)/.exec(line)
    const bare = /^\s*(\/\S+)\s+\(/.exec(line)
    const p = arrow?.[1] ?? bare?.[1]
    if (p && !out.includes(p)) out.push(p)
  }
  return out
}

export async function lddLibraries(binary: string): Promise<string[]> {
  try {
    const r = await execa('ldd', [binary])
    return parseLdd(r.stdout)
  } catch (e) {
    throw new ToolError('ldd', `cannot list libraries of ${binary}: ${errorMessage(e)}`, { binary }, { cause: e })
  }
}

export function findExecutable(name: string, candidates: string[]): string {
  for (const c of candidates) if (existsSync(c)) return c
  throw new ToolError(name, `not found (looked at ${candidates.join(', ')})`)
}

export interface RootfsInputs {
  node: string
  busybox: string
  veritysetup: string
  /** Bundled agent text, or undefined to build a rootfs without an agent. */
  agentBundle: string | undefined
}

export interface RootfsResult {
  path: string
  hash: string
  cached: boolean
  /** Files placed in the image (guest path → host source), for reports. */
  files: Record<string, string>
}

/** A fixed UUID derived from the content hash (mkfs.erofs -U). */
export function uuidFromHash(hash: string): string {
  const h = hash.padEnd(32, '0')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}

export async function buildRootfs(opts: { cacheDir: string; progress: Progress; inputs: RootfsInputs }): Promise<RootfsResult> {
  const { node, busybox, veritysetup, agentBundle } = opts.inputs
  // guest path → host source file
  const files: Record<string, string> = {}
  files['/usr/bin/node'] = node
  files['/usr/sbin/veritysetup'] = veritysetup
  for (const bin of [node, veritysetup]) for (const lib of await lddLibraries(bin)) files[lib] = lib
  files['/bin/busybox'] = busybox
  const koffi = koffiFiles()
  for (const [src, rel] of koffi) files[`/usr/lib/kataref/node_modules/koffi/${rel}`] = src

  const scripts: Record<string, { text: string; mode: number }> = {
    '/etc/inittab': { text: INITTAB, mode: 0o644 },
    '/etc/passwd': { text: ETC_PASSWD, mode: 0o644 },
    '/etc/group': { text: ETC_GROUP, mode: 0o644 },
    '/etc/hostname': { text: 'kataref-guest\n', mode: 0o644 },
    '/etc/hosts': { text: '127.0.0.1 localhost kataref-guest\n::1 localhost\n', mode: 0o644 },
    '/etc/resolv.conf': { text: '', mode: 0o644 },
    '/usr/lib/kataref/rc.sysinit': { text: RC_SYSINIT, mode: 0o755 },
    '/usr/lib/kataref/debug-shell': { text: DEBUG_SHELL, mode: 0o755 },
    '/usr/lib/kataref/agent-run': { text: AGENT_RUN, mode: 0o755 },
  }
  if (agentBundle !== undefined) scripts[AGENT_GUEST_PATH] = { text: agentBundle, mode: 0o644 }

  const paths = Object.keys(files).sort()
  const hashes = await Promise.all(paths.map((p) => hashFileMemo(realpathSync(files[p]!))))
  const hash = sha256(
    'rootfs-v1',
    ...paths.map((p, i) => `${p}:${hashes[i]}:${statSync(files[p]!).mode & 0o7777}`),
    ...Object.keys(scripts)
      .sort()
      .map((p) => `${p}:${scripts[p]!.mode}:${sha256(scripts[p]!.text)}`),
  )
  const path = join(opts.cacheDir, 'rootfs', `rootfs-${hash.slice(0, 16)}.erofs`)
  const t0 = Date.now()
  const built = await atomicEntry(path, async (tmp) => {
    opts.progress(`building rootfs ${hash.slice(0, 16)} (${paths.length} files + ${Object.keys(scripts).length} scripts)`)
    const scratch = await scratchDir(opts.cacheDir, 'rootfs-tree')
    try {
      const tree = scratch.path
      for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'var', 'mnt', 'root', 'etc', 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/lib', 'lib', 'lib64']) {
        mkdirSync(join(tree, d), { recursive: true })
      }
      chmodSync(join(tree, 'tmp'), 0o1777)
      chmodSync(join(tree, 'root'), 0o700)
      for (const p of paths) {
        const dest = join(tree, p)
        mkdirSync(dirname(dest), { recursive: true })
        copyFileSync(realpathSync(files[p]!), dest)
        chmodSync(dest, statSync(files[p]!).mode & 0o7777)
      }
      for (const [applet, target] of busyboxAppletLinks(busybox)) {
        const dest = join(tree, applet)
        if (existsSync(dest)) continue // a real binary (veritysetup, node) wins over an applet
        mkdirSync(dirname(dest), { recursive: true })
        symlinkSync(target, dest)
      }
      for (const [p, s] of Object.entries(scripts)) {
        const dest = join(tree, p)
        mkdirSync(dirname(dest), { recursive: true })
        writeFileSync(dest, s.text, { mode: s.mode })
        chmodSync(dest, s.mode)
      }
      symlinkSync('/proc/self/mounts', join(tree, 'etc', 'mtab'))
      const tm = Date.now()
      try {
        await execa('mkfs.erofs', ['--quiet', '-T0', '--all-root', '-x-1', `-U${uuidFromHash(hash)}`, tmp, tree])
      } catch (e) {
        throw new ToolError('mkfs.erofs', `failed: ${(e as { stderr?: string }).stderr ?? errorMessage(e)}`, { tree }, { cause: e })
      }
      opts.progress(`rootfs image ${humanSize(statSync(tmp).size)} written by mkfs.erofs in ${Date.now() - tm} ms (total ${Date.now() - t0} ms)`)
    } finally {
      await scratch.done()
    }
  })
  if (!built) opts.progress(`reusing cached rootfs ${hash.slice(0, 16)}`)
  touchEntry(path)
  const pruned = pruneEntries(join(opts.cacheDir, 'rootfs'), 'rootfs-', ROOTFS_KEEP, [path])
  if (pruned.length > 0) opts.progress(`pruned ${pruned.length} old rootfs image(s)`)
  return { path, hash, cached: !built, files }
}
