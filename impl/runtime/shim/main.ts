// containerd-shim-kataref-v2 (protocols.md §3.3–§3.4): `start` creates the listening socket, spawns
// the daemon (own process group, stdio not containerd's pipes, listener passed as fd 3), writes
// `address` and `shim.pid` in the bundle, prints only the address; `delete` cleans up and prints a
// DeleteResponse; no action = the daemon serving containerd.task.v2.Task on the socket.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, toBinary } from '@bufbuild/protobuf'
import { timestampFromDate } from '@bufbuild/protobuf/wkt'
import { DeleteResponseSchema, Task } from '../../gen/containerd/task_pb.ts'
import { TtrpcServer } from '../../ttrpc/index.ts'
import { errorMessage } from '../../types/errors.ts'
import { createLogger, type Logger } from '../../types/logger.ts'
import { shimBaseLevel } from '../logging/log-level.ts'
import { containerType } from '../resource/cpu-mem/workload-request.ts'
import { EventForwarder } from './events.ts'
import { FlagError, addressPath, parseShimFlags, shimSocketAddress, type ShimFlags } from './flags.ts'
import type { OciSpecJson } from './oci.ts'
import type { SandboxRuntime } from './sandbox-runtime.ts'
import { TaskService } from './task-service.ts'

export const SHIM_NAME = 'containerd-shim-kataref-v2'
/** CRI annotation naming the pod sandbox a container belongs to (§3.3 rule 5). */
export const ANNO_SANDBOX_ID = 'io.kubernetes.cri.sandbox-id'

export interface MainIo {
  stdout: (data: string | Uint8Array) => void
  stderr: (data: string) => void
}

const defaultIo: MainIo = {
  stdout: (d) => process.stdout.write(d),
  stderr: (d) => process.stderr.write(d),
}

export async function main(argv: string[], io: MainIo = defaultIo): Promise<number> {
  let flags: ShimFlags
  try {
    flags = parseShimFlags(argv)
  } catch (e) {
    if (e instanceof FlagError) {
      io.stderr(`${e.message}\nUsage of ${SHIM_NAME}: -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] [-bundle DIR] [-socket ADDR] [start|delete]\n`)
      return 2
    }
    throw e
  }
  if (flags.version) {
    io.stdout(`${SHIM_NAME}:\n  Runtime: kataref\n  Version: 0.1.0\n`)
    return 0
  }
  if (!flags.namespace) {
    io.stderr('shim namespace cannot be empty\n')
    return 1
  }
  try {
    switch (flags.action) {
      case 'start':
        io.stdout(await startAction(flags))
        return 0
      case 'delete':
        io.stdout(await deleteAction(flags))
        return 0
      case '':
        await daemon(flags)
        return 0
      default:
        io.stderr(`unknown action ${JSON.stringify(flags.action)}\n`)
        return 1
    }
  } catch (e) {
    io.stderr(`${SHIM_NAME} ${flags.action || 'daemon'}: ${errorMessage(e)}\n`)
    return 1
  }
}

function readSpec(bundle: string): OciSpecJson | undefined {
  try {
    return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as OciSpecJson
  } catch {
    return undefined
  }
}

/** The sandbox a container joins: CRI's sandbox-id annotation for a non-sandbox container, else itself. */
export function sandboxIdOf(id: string, spec: OciSpecJson | undefined): string {
  const type = containerType(spec?.annotations)
  const sb = spec?.annotations?.[ANNO_SANDBOX_ID]
  return type === 'container' && sb ? sb : id
}

/** Where the VM of a sandbox keeps its sockets (short: unix socket paths are limited to 107 bytes). */
export function vmRunDir(namespace: string, sandboxId: string): string {
  return join(tmpdir(), `kataref-shim-${createHash('sha256').update(`${namespace}/${sandboxId}`).digest('hex').slice(0, 16)}`)
}

function canConnect(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    const done = (ok: boolean) => {
      clearTimeout(t)
      s.destroy()
      resolve(ok)
    }
    const t = setTimeout(() => done(false), timeoutMs)
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

async function startAction(f: ShimFlags): Promise<string> {
  const bundle = f.bundle || process.cwd()
  const spec = readSpec(bundle)
  const sandboxId = sandboxIdOf(f.id, spec)
  if (sandboxId !== f.id) {
    // Kata reuses one shim per sandbox: print that shim's address.
    const sbAddress = shimSocketAddress(f.address, f.namespace, sandboxId)
    if (await canConnect(addressPath(sbAddress))) {
      writeFileSync(join(bundle, 'address'), sbAddress)
      return sbAddress
    }
  }
  const address = shimSocketAddress(f.address, f.namespace, f.id)
  const path = addressPath(address)
  if (existsSync(path)) {
    if (await canConnect(path)) {
      // A shim for this id is already serving (start run twice): reuse it.
      writeFileSync(join(bundle, 'address'), address)
      return address
    }
    rmSync(path, { force: true })
  }
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o711 })
  // Listening before the address is printed: containerd dials once and does not retry.
  const server: Server = await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(path, () => resolve(s))
  })
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  // The daemon's stdout/stderr go to the bundle's `log` FIFO (containerd copies it to its log), never
  // to containerd's pipes (containerd waits for those to close).
  let logFd: number | 'ignore' = 'ignore'
  try {
    if (existsSync(join(bundle, 'log'))) logFd = openSync(join(bundle, 'log'), constants.O_RDWR | constants.O_NONBLOCK)
  } catch {
    logFd = 'ignore'
  }
  const args = [
    ...process.execArgv, process.argv[1]!,
    '-namespace', f.namespace, '-id', f.id, '-address', f.address, '-publish-binary', f.publishBinary,
    '-bundle', bundle, '-socket', address, ...(f.debug ? ['-debug'] : []),
  ]
  const child = spawn(process.execPath, args, { cwd: bundle, detached: true, stdio: ['ignore', logFd, logFd, fd], env: process.env })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  child.unref()
  if (typeof logFd === 'number') closeSync(logFd)
  writeFileSync(join(bundle, 'address'), address)
  writeFileSync(join(bundle, 'shim.pid'), String(child.pid))
  // Not server.close(): libuv would unlink the socket the daemon now serves. The process exits.
  server.unref()
  return address
}

function isOurShim(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return cmd.includes(SHIM_NAME) || cmd.includes('runtime/shim/main')
  } catch {
    return false
  }
}

async function deleteAction(f: ShimFlags): Promise<Uint8Array> {
  const bundle = f.bundle || process.cwd()
  const log = createLogger({ level: shimBaseLevel(f.debug), component: 'shim-delete', destination: process.stderr })
  // The daemon (and with it QEMU: parent-death signal) if it is still there.
  let pid = 0
  try {
    pid = Number(readFileSync(join(bundle, 'shim.pid'), 'utf8').trim())
  } catch {
    /* no bundle or no pid file */
  }
  if (pid > 0 && isOurShim(pid)) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    log.info({ pid }, 'killed the shim daemon')
  }
  rmSync(addressPath(shimSocketAddress(f.address, f.namespace, f.id)), { force: true })
  rmSync(vmRunDir(f.namespace, sandboxIdOf(f.id, readSpec(bundle))), { recursive: true, force: true })
  await new Promise<void>((resolve) => {
    const c = spawn('umount', ['-l', join(bundle, 'rootfs')], { stdio: 'ignore' })
    c.on('close', () => resolve())
    c.on('error', () => resolve())
  })
  return toBinary(DeleteResponseSchema, create(DeleteResponseSchema, { pid: 0, exitStatus: 128 + 9, exitedAt: timestampFromDate(new Date()) }))
}

/** Builds the sandbox runtime of the daemon. KATAREF_SHIM_RUNTIME=fake: the scripted fake (tests). */
async function makeRuntime(f: ShimFlags, bundle: string, log: Logger): Promise<SandboxRuntime> {
  if (process.env.KATAREF_SHIM_RUNTIME === 'fake') {
    const { FakeSandboxRuntime } = await import('./fake-runtime.ts')
    const fake = new FakeSandboxRuntime()
    // A started process prints its args and exits 0.
    fake.onStart = (cid, eid, fk) => {
      const args = eid === cid ? fk.created.find((c) => c.containerId === cid)?.spec.process?.args : fk.procs.get(`${cid}/${eid}`)?.process?.args
      fk.print(cid, eid, `${(args ?? []).join(' ')}\n`)
      fk.exit(cid, eid, 0)
    }
    return fake
  }
  const { VmSandboxRuntime } = await import('./vm-runtime.ts')
  const sandboxId = sandboxIdOf(f.id, readSpec(bundle))
  return new VmSandboxRuntime({ sandboxId, runDir: vmRunDir(f.namespace, sandboxId), logger: log })
}

async function daemon(f: ShimFlags): Promise<void> {
  const bundle = f.bundle || process.cwd()
  const log = createLogger({ level: shimBaseLevel(f.debug), component: 'shim', destination: process.stderr }).child({ id: f.id, namespace: f.namespace })
  process.on('SIGPIPE', () => {})
  log.debug({ argv: process.argv.slice(2), cwd: process.cwd(), ttrpcAddress: process.env.TTRPC_ADDRESS }, 'shim daemon starting')
  const runtime = await makeRuntime(f, bundle, log)
  const events = new EventForwarder({
    namespace: f.namespace, logger: log,
    ...(process.env.TTRPC_ADDRESS ? { ttrpcAddress: process.env.TTRPC_ADDRESS } : {}),
    ...(f.publishBinary ? { publishBinary: f.publishBinary, address: f.address } : {}),
  })
  const socketPath = addressPath(f.socket || shimSocketAddress(f.address, f.namespace, f.id))
  let exiting = false
  const exit = async (code: number) => {
    if (exiting) return
    exiting = true
    await events.close().catch(() => {})
    rmSync(socketPath, { force: true })
    log.info({ code }, 'shim exits')
    process.exit(code)
  }
  const service = new TaskService({ runtime, events, logger: log, onShutdown: () => exit(0) })
  const server = new TtrpcServer({ logger: log }).register(Task, service.handlers())
  const net = createServer((sock) => server.serveConnection(sock))
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject)
    // fd 3: the listener created by `start`; without it (started by hand) listen on -socket.
    if (isSocketFd(3)) net.listen({ fd: 3 }, resolve)
    else {
      rmSync(socketPath, { force: true })
      net.listen(socketPath, resolve)
    }
  })
  log.info({ pid: process.pid, socket: socketPath, bundle, ttrpcAddress: process.env.TTRPC_ADDRESS }, 'shim daemon serving containerd.task.v2.Task')
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      log.info({ signal: sig }, 'signal: stopping the sandbox')
      void service.stopSandbox().finally(() => exit(0))
    })
  }
  await new Promise<never>(() => {})
}

function isSocketFd(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket()
  } catch {
    return false
  }
}
