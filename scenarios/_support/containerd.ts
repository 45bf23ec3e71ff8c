// A private containerd 1.6 for shim scenarios (protocols.md §4.1, §4.2): scratch root/state/socket,
// CRI plugin off, containerd-shim-kataref-v2 on its PATH; a busybox image built locally (docker
// archive: deterministic layer tar of busybox-static + applet links) and imported with ctr.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')
export const SHIM_BIN = join(ROOT, 'bin', 'containerd-shim-kataref-v2.mjs')
export const RUNTIME = 'io.containerd.kataref.v2'
export const IMAGE = 'docker.io/library/busybox:latest'
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'sleep', 'true', 'false', 'env', 'id', 'kill', 'hostname']

/** busybox.tar (docker archive) in `dir`; returns its path. */
export async function buildBusyboxImage(dir: string): Promise<string> {
  const tree = join(dir, 'tree')
  rmSync(tree, { recursive: true, force: true })
  mkdirSync(join(tree, 'bin'), { recursive: true })
  copyFileSync('/bin/busybox', join(tree, 'bin', 'busybox'))
  for (const a of APPLETS) symlinkSync('busybox', join(tree, 'bin', a))
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc', 'run']) mkdirSync(join(tree, d))
  const pack = join(dir, 'pack')
  rmSync(pack, { recursive: true, force: true })
  mkdirSync(join(pack, 'layer'), { recursive: true })
  const layer = join(pack, 'layer', 'layer.tar')
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', tree, '-cf', layer, '.'])
  const diffId = `sha256:${createHash('sha256').update(readFileSync(layer)).digest('hex')}`
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  })
  const cfgName = `${createHash('sha256').update(config).digest('hex')}.json`
  writeFileSync(join(pack, cfgName), config)
  writeFileSync(join(pack, 'manifest.json'), JSON.stringify([{ Config: cfgName, RepoTags: ['busybox:latest'], Layers: ['layer/layer.tar'] }]))
  const out = join(dir, 'busybox.tar')
  await run('tar', ['--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', pack, '-cf', out, 'manifest.json', cfgName, 'layer/layer.tar'])
  return out
}

export interface PrivateContainerd {
  socket: string
  proc: ChildProcess
  log: () => string
  /** The last `starting qemu` log line (the QEMU argv, logged at info) of the sandbox `id`; '' if none. */
  qemuStartLine(id: string): string
  ctr(args: string[], opts?: { timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }>
  stop(): Promise<void>
}

/** `env`: extra environment for containerd and so for the shims it starts (e.g. KATA_CONF_FILE). */
export async function startContainerd(dir: string, opts: { env?: Record<string, string> } = {}): Promise<PrivateContainerd> {
  const socket = join(dir, 'containerd.sock')
  const bin = join(dir, 'bin')
  mkdirSync(bin, { recursive: true })
  if (!existsSync(join(bin, 'containerd-shim-kataref-v2'))) symlinkSync(SHIM_BIN, join(bin, 'containerd-shim-kataref-v2'))
  const config = join(dir, 'config.toml')
  writeFileSync(config, [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${socket}"`,
    '[debug]',
    '  level = "info"',
    '',
  ].join('\n'))
  let log = ''
  const proc = spawn('containerd', ['--config', config], {
    env: { ...process.env, ...opts.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)))
  const end = Date.now() + 30_000
  while (!existsSync(socket)) {
    if (proc.exitCode !== null) throw new Error(`containerd exited: ${log}`)
    if (Date.now() > end) throw new Error(`containerd socket did not appear: ${log}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const ctr: PrivateContainerd['ctr'] = (args, opts = {}) =>
    new Promise((res) => {
      const c = spawn('ctr', ['-a', socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const t = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 300_000)
      c.on('close', (code) => {
        clearTimeout(t)
        res({ code, stdout, stderr })
      })
    })
  return {
    socket, proc, ctr,
    log: () => log,
    qemuStartLine: (id) => log.split('\n').filter((l) => l.includes('"msg":"starting qemu"') && l.includes(`"id":"${id}"`)).at(-1) ?? '',
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM')
        await new Promise((r) => {
          const t = setTimeout(() => (proc.kill('SIGKILL'), r(undefined)), 5000)
          proc.once('exit', () => (clearTimeout(t), r(undefined)))
        })
      }
      // Overlay mounts containerd left under the private root, then the scratch dir.
      await run('sh', ['-c', `grep ' ${dir}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]).catch(() => {})
    },
  }
}

/** startContainerd with the busybox image (buildBusyboxImage in `dir`) imported as IMAGE. */
export async function startContainerdWithBusybox(dir: string, opts: { env?: Record<string, string> } = {}): Promise<PrivateContainerd> {
  const image = await buildBusyboxImage(dir)
  const cd = await startContainerd(dir, opts)
  const imp = await cd.ctr(['images', 'import', image])
  if (imp.code !== 0) {
    await cd.stop()
    throw new Error(`ctr images import: ${imp.stderr}`)
  }
  return cd
}

/** pids of QEMU processes that belong to shim sandboxes (their run dirs are `<tmp>/kataref-shim-<hash>`). */
export function shimQemus(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8')
        return cmd.startsWith('qemu-system') && cmd.includes('kataref-shim-')
      } catch {
        return false
      }
    })
}
