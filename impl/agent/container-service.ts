// AgentService handlers for containers and processes (issue 5) and CopyFile. registerAgentServices
// spreads these after its own entries. CreateContainer runs the storage part first (Sandbox.createContainer)
// and then creates the container's init process; RemoveContainer removes the processes and
// cgroups first, then the storages.
import type { ServiceImpl } from '../ttrpc/service-types.ts'
import type { AgentService } from '../gen/agent_pb.ts'
import type { Logger } from '../types/logger.ts'
import { ContainerManager } from './container.ts'
import { copyFile, SHARED_CONTAINERS_DIR } from './copy-file.ts'
import { addDevices } from './device/device.ts'
import { updateSpecDevices } from './device/spec-update.ts'
import { SysfsUeventSource, UeventStore, hotplugTimeoutFromCmdline } from './device/uevent.ts'
import { EMPTYDIR_DRIVERS, handleEmptyDirStorage } from './emptydir.ts'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { Sandbox } from './sandbox.ts'

type Handlers = Partial<ServiceImpl<typeof AgentService>>

const managers = new WeakMap<Sandbox, ContainerManager>()
const uevents = new SysfsUeventSource(new UeventStore())
let hotplugTimeoutMs: number | undefined
function hotplugTimeout(): number {
  if (hotplugTimeoutMs === undefined) {
    let cmdline = ''
    try {
      cmdline = readFileSync('/proc/cmdline', 'utf8')
    } catch {}
    hotplugTimeoutMs = hotplugTimeoutFromCmdline(cmdline)
  }
  return hotplugTimeoutMs
}
/** Mount points of emptyDir storages per container (unmounted on RemoveContainer). */
const emptyDirMounts = new Map<string, string[]>()
function umount(target: string): Promise<void> {
  return new Promise((resolve) => execFile('/bin/busybox', ['umount', '-l', target], () => resolve()))
}
/** Lazily unmounts emptyDir mount points, last mounted first (failures ignored). */
async function umountAll(targets: readonly string[]): Promise<void> {
  for (const m of [...targets].reverse()) await umount(m)
}

export function containerManagerOf(sandbox: Sandbox, logger: Logger): ContainerManager {
  let m = managers.get(sandbox)
  if (!m) {
    m = new ContainerManager({ sharedContainersDir: sandbox.sharedContainersDir }, logger)
    managers.set(sandbox, m)
  }
  return m
}

export function containerServiceHandlers(deps: { sandbox: Sandbox; logger: Logger }): Handlers {
  const { sandbox, logger } = deps
  const containers = containerManagerOf(sandbox, logger)
  return {
    createContainer: async (req) => {
      const cid = req.containerId
      logger.info({ containerId: cid, execId: req.execId, storages: req.storages.length, devices: req.devices.length }, 'CreateContainer')
      if (containers.containers.has(cid)) await containers.create(cid, req.execId, req.OCI) // throws ALREADY_EXISTS
      // 1. devices (upstream order: add_devices, then storages, then the container); the spec's
      //    linux.devices get the guest major/minor of the node each device resolved to.
      if (req.devices.length > 0) {
        const resolved = await addDevices(req.devices, { waitFor: (m, t) => uevents.waitFor(m, t), timeoutMs: hotplugTimeout() })
        if (req.OCI) updateSpecDevices(req.OCI, new Map([...resolved].map(([p, info]) => [p, { info }])))
        logger.info({ containerId: cid, devices: Object.fromEntries([...resolved].map(([k, v]) => [k, v.path])) }, 'devices ready')
      }
      // 2. emptyDir storages (local / ephemeral) here; everything else to the storage side.
      const mine = req.storages.filter((s) => EMPTYDIR_DRIVERS.includes(s.driver))
      const theirs = req.storages.filter((s) => !EMPTYDIR_DRIVERS.includes(s.driver))
      const mounted: string[] = []
      try {
        for (const s of mine) {
          const r = await handleEmptyDirStorage(s)
          if (r.mounted) mounted.push(r.mounted)
        }
      } catch (e) {
        await umountAll(mounted)
        throw e
      }
      emptyDirMounts.set(cid, mounted)
      try {
        await sandbox.createContainer({ containerId: cid, storages: theirs })
      } catch (e) {
        await umountAll(mounted)
        emptyDirMounts.delete(cid)
        throw e
      }
      // 3. the container and its (gated) init process.
      try {
        await containers.create(cid, req.execId, req.OCI)
      } catch (e) {
        await sandbox.removeContainer(cid).catch(() => {})
        await umountAll(mounted)
        emptyDirMounts.delete(cid)
        throw e
      }
      return {}
    },
    startContainer: async (req) => {
      logger.info({ containerId: req.containerId }, 'StartContainer')
      await containers.start(req.containerId)
      return {}
    },
    execProcess: async (req) => {
      logger.info({ containerId: req.containerId, execId: req.execId }, 'ExecProcess')
      await containers.exec(req.containerId, req.execId, req.process)
      return {}
    },
    waitProcess: async (req) => ({ status: await containers.wait(req.containerId, req.execId) }),
    signalProcess: async (req) => {
      logger.info({ containerId: req.containerId, execId: req.execId, signal: req.signal }, 'SignalProcess')
      await containers.signal(req.containerId, req.execId, req.signal)
      return {}
    },
    writeStdin: async (req) => ({ len: await containers.writeStdin(req.containerId, req.execId, req.data) }),
    readStdout: async (req) => ({ data: await containers.readStdout(req.containerId, req.execId, req.len) }),
    readStderr: async (req) => ({ data: await containers.readStderr(req.containerId, req.execId, req.len) }),
    closeStdin: async (req) => {
      containers.closeStdin(req.containerId, req.execId)
      return {}
    },
    removeContainer: async (req) => {
      logger.info({ containerId: req.containerId }, 'RemoveContainer')
      await containers.remove(req.containerId, req.timeout)
      await umountAll(emptyDirMounts.get(req.containerId) ?? [])
      emptyDirMounts.delete(req.containerId)
      await sandbox.removeContainer(req.containerId)
      return {}
    },
    copyFile: async (req) => {
      await copyFile(req, { prefix: SHARED_CONTAINERS_DIR, dir: sandbox.sharedContainersDir })
      return {}
    },
    destroySandbox: async () => {
      logger.info({ sandboxId: sandbox.id }, 'DestroySandbox')
      await containers.removeAll()
      await sandbox.destroySandbox()
      return {}
    },
  }
}
