// AgentService handlers for containers and processes (issue 5) and CopyFile. registerAgentServices
// spreads these after its own entries. CreateContainer runs the storage part first (Sandbox.createContainer,
// when present) and then creates the container's init process; RemoveContainer removes the processes and
// cgroups first, then the storages.
import type { ServiceImpl } from '../ttrpc/service-types.ts'
import type { AgentService } from '../gen/agent_pb.ts'
import type { Logger } from '../types/logger.ts'
import { KATA_RUN_DIR } from './config.ts'
import { ContainerManager } from './container.ts'
import { copyFile } from './copy-file.ts'
import type { Sandbox } from './sandbox.ts'

type Handlers = Partial<ServiceImpl<typeof AgentService>>

/** The storage side of a sandbox, if this build has it (structural, so either side can land first). */
interface StorageSide {
  createContainer?: (p: { containerId: string; storages: readonly never[] }) => Promise<void>
  removeContainer?: (containerId: string) => Promise<void>
}

const managers = new WeakMap<Sandbox, ContainerManager>()

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
  const storage = sandbox as unknown as StorageSide
  return {
    createContainer: async (req) => {
      logger.info({ containerId: req.containerId, execId: req.execId, storages: req.storages.length }, 'CreateContainer')
      if (storage.createContainer) await storage.createContainer({ containerId: req.containerId, storages: req.storages as never[] })
      try {
        await containers.create(req.containerId, req.execId, req.OCI)
      } catch (e) {
        if (storage.removeContainer) await storage.removeContainer(req.containerId).catch(() => {})
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
      if (storage.removeContainer) await storage.removeContainer(req.containerId)
      return {}
    },
    copyFile: async (req) => {
      await copyFile(req, { prefix: `${KATA_RUN_DIR}/shared/containers`, dir: sandbox.sharedContainersDir })
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
