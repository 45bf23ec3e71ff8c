// The real SandboxRuntime: one QEMU VM per sandbox (pod), booted on the first CreateContainer with the
// same parts harness/boot-guest.ts uses (guest images, QemuVm, KataAgent over the virtio-serial agent
// port), sized statically from the OCI spec (§6), then CreateSandbox + GetGuestDetails. The bundle's
// rootfs is copied into the guest shared dir with CopyFile (see README.md for why).
import { existsSync } from 'node:fs'
import { lstat, open, readdir, readlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildGuestImages } from '../../../images/guest/index.ts'
import { KataAgent } from '../agent/kata-agent.ts'
import type { QemuVm } from '../hypervisor/qemu/qemu.ts'
import { applyInitialSize, bootVcpus, initialWorkload } from '../resource/cpu-mem/index.ts'
import { hostResources, loadConfiguration, parseConfiguration, resolveConfigPath, type KatarefConfig } from '../../types/config/index.ts'
import { errorMessage } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { guestRootfsPath, ociProcessToProto, ociSpecToProto, type OciProcessJson, type OciSpecJson } from './oci.ts'
import type { CreateContainerParams, SandboxRuntime } from './sandbox-runtime.ts'
import { startVmWithAgent, type VmWithAgent } from '../sandbox/vm-with-agent.ts'
import { danTapNetdevs, sandboxNetworkPlan } from '../network/dan/index.ts'
import { tapNetdevArgs } from '../hypervisor/qemu/netdev.ts'

const REPO_CONFIG = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../config/configuration-kataref.toml')
const AGENT_READY_MS = 180_000
const CALL = { timeoutMs: 120_000 }
const CHUNK = 1024 * 1024

export interface VmSandboxRuntimeOptions {
  sandboxId: string
  /** QEMU run dir (sockets, console log); short enough for unix socket paths. */
  runDir: string
  logger?: Logger
  /** configuration.toml; default: KATA_CONF_FILE, the runtime-rs search list, then the repo's config. */
  configPath?: string
}

/** Configuration as the shim loads it: the usual search, falling back to the repo's own file. */
export function loadShimConfig(path?: string): KatarefConfig {
  let file: string
  try {
    file = resolveConfigPath(path ? { path } : {})
  } catch {
    file = REPO_CONFIG
  }
  return existsSync(file) ? loadConfiguration({ path: file }).config : parseConfiguration('', 'defaults', hostResources()).config
}

interface Booted {
  vm: QemuVm
  agent: KataAgent
}

export class VmSandboxRuntime implements SandboxRuntime {
  private readonly log: Logger
  private booting: Promise<Booted> | undefined
  private down: Promise<void> | undefined

  constructor(private readonly opts: VmSandboxRuntimeOptions) {
    this.log = (opts.logger ?? nullLogger).child({ component: 'sandbox', sandboxId: opts.sandboxId })
  }

  private async agent(): Promise<KataAgent> {
    if (!this.booting) throw new Error(`sandbox ${this.opts.sandboxId} is not running`)
    return (await this.booting).agent
  }

  private async boot(spec: OciSpecJson): Promise<Booted> {
    const started = Date.now()
    const config = loadShimConfig(this.opts.configPath)
    const request = initialWorkload({ spec })
    const sized = applyInitialSize(config, request).config
    const hv = sized.hypervisor[sized.runtime.hypervisorName]!
    const smp = bootVcpus(hv)
    this.log.info({ request, vcpus: hv.defaultVcpus, smp, memoryMiB: hv.defaultMemory }, 'static sandbox sizing')
    // DAN (spec §9): `<dan_conf>/<sandbox-id>.json` → host taps as QEMU tap netdevs + virtio-net.
    const net = sandboxNetworkPlan(sized.runtime, this.opts.sandboxId)
    let netArgs: string[] = []
    if (net.kind === 'dan') {
      const taps = danTapNetdevs(net.config, hv.networkQueues)
      if (taps.length < net.config.devices.length) this.log.warn({ path: net.path }, 'DAN: only host-tap devices are attached; vhost-user devices are skipped')
      netArgs = tapNetdevArgs(taps)
      this.log.info({ path: net.path, taps: taps.map((t) => ({ endpoint: t.endpointName, tap: t.ifname, mac: t.mac, mtu: t.mtu })) }, 'DAN network')
    }
    const img = await buildGuestImages({ progress: false })
    let booted: VmWithAgent
    try {
      booted = await startVmWithAgent(
        { kernel: img.kernel, initrd: img.initramfs, rootfs: img.rootfs, smp, memoryMiB: hv.defaultMemory, runDir: this.opts.runDir, extraArgs: netArgs },
        { agentDeadlineMs: AGENT_READY_MS, logger: this.log },
      )
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'sandbox boot failed')
      throw e
    }
    const { vm, agent } = booted
    try {
      await agent.agent.createSandbox({ sandboxId: this.opts.sandboxId, hostname: spec.hostname ?? '', dns: [] }, CALL)
      const details = await agent.agent.getGuestDetails({ memBlockSize: true, memHotplugProbe: true }, CALL)
      this.log.info({ bootMs: Date.now() - started, agentVersion: details.agentDetails?.version, qemuPid: vm.pid }, 'sandbox ready')
      return { vm, agent }
    } catch (e) {
      this.log.error({ err: errorMessage(e), console: vm.consoleTail(40) }, 'sandbox boot failed')
      agent.close()
      await vm.stop()
      throw e
    }
  }

  async createContainer(p: CreateContainerParams): Promise<{ pid: number }> {
    this.booting ??= this.boot(p.spec)
    const { vm, agent } = await this.booting
    const guestRoot = guestRootfsPath(p.containerId)
    const t0 = Date.now()
    const n = await copyTree(agent, p.rootfsDir, guestRoot)
    this.log.info({ containerId: p.containerId, files: n, ms: Date.now() - t0 }, 'rootfs copied into the guest')
    await agent.agent.createContainer({ containerId: p.containerId, execId: p.containerId, OCI: ociSpecToProto(p.spec, guestRoot) }, CALL)
    return { pid: vm.pid ?? 0 }
  }

  async startContainer(cid: string): Promise<void> {
    await (await this.agent()).agent.startContainer({ containerId: cid }, CALL)
  }
  async execProcess(cid: string, eid: string, process: OciProcessJson): Promise<void> {
    await (await this.agent()).agent.execProcess({ containerId: cid, execId: eid, process: ociProcessToProto(process) }, CALL)
  }
  async signalProcess(cid: string, eid: string, signal: number): Promise<void> {
    await (await this.agent()).agent.signalProcess({ containerId: cid, execId: eid, signal }, CALL)
  }
  async waitProcess(cid: string, eid: string): Promise<number> {
    return (await (await this.agent()).agent.waitProcess({ containerId: cid, execId: eid })).status
  }
  async readStdout(cid: string, eid: string, len: number): Promise<Uint8Array> {
    return (await (await this.agent()).agent.readStdout({ containerId: cid, execId: eid, len })).data
  }
  async readStderr(cid: string, eid: string, len: number): Promise<Uint8Array> {
    return (await (await this.agent()).agent.readStderr({ containerId: cid, execId: eid, len })).data
  }
  async writeStdin(cid: string, eid: string, data: Uint8Array): Promise<number> {
    return (await (await this.agent()).agent.writeStdin({ containerId: cid, execId: eid, data }, CALL)).len
  }
  async closeStdin(cid: string, eid: string): Promise<void> {
    await (await this.agent()).agent.closeStdin({ containerId: cid, execId: eid }, CALL)
  }
  async removeContainer(cid: string): Promise<void> {
    await (await this.agent()).agent.removeContainer({ containerId: cid, timeout: 10 }, CALL)
  }

  shutdown(): Promise<void> {
    this.down ??= this.doShutdown()
    return this.down
  }

  private async doShutdown(): Promise<void> {
    if (!this.booting) return
    let booted: Booted
    try {
      booted = await this.booting
    } catch {
      return // boot failed and cleaned up after itself
    }
    try {
      await booted.agent.agent.destroySandbox({}, { timeoutMs: 2_000 })
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'DestroySandbox failed')
    }
    booted.agent.close()
    await booted.vm.stop({ graceMs: 1_000 })
    this.log.info('sandbox stopped')
  }
}

/**
 * Copies a host tree into the guest shared dir with CopyFile (protocols.md §2.6): directories and
 * symlinks are single calls, regular files go in 1 MiB chunks; other file types are skipped.
 * Returns the number of entries copied.
 */
export async function copyTree(agent: KataAgent, hostDir: string, guestDir: string): Promise<number> {
  let count = 0
  const walk = async (host: string, guest: string): Promise<void> => {
    const st = await lstat(host)
    const base = { path: guest, fileMode: st.mode, dirMode: 0o755, uid: st.uid, gid: st.gid }
    if (st.isDirectory()) {
      await agent.agent.copyFile({ ...base, fileSize: 0n }, CALL)
      count++
      for (const name of (await readdir(host)).sort()) await walk(join(host, name), `${guest}/${name}`)
    } else if (st.isSymbolicLink()) {
      const target = Buffer.from(await readlink(host))
      await agent.agent.copyFile({ ...base, fileSize: BigInt(target.length), data: target }, CALL)
      count++
    } else if (st.isFile()) {
      const fh = await open(host, 'r')
      try {
        const buf = Buffer.alloc(Math.min(CHUNK, Math.max(st.size, 1)))
        let offset = 0
        do {
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset)
          await agent.agent.copyFile({ ...base, fileSize: BigInt(st.size), offset: BigInt(offset), data: buf.subarray(0, bytesRead) }, CALL)
          offset += bytesRead
          if (bytesRead === 0) break
        } while (offset < st.size)
      } finally {
        await fh.close()
      }
      count++
    }
  }
  await walk(hostDir, guestDir)
  return count
}
