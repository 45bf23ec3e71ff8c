// The grpc.AgentService and grpc.Health handlers. The RPC boundary stays thin: take the decoded
// request, call the domain object, return the reply. Errors thrown here are KatarefErrors whose
// `code` the ttrpc server puts on the wire. Methods not listed answer Unimplemented with their name
// (the ttrpc server does that for every method missing from the table).
import { AgentService } from '../gen/agent_pb.ts'
import { Health, HealthCheckResponse_ServingStatus } from '../gen/health_pb.ts'
import type { TtrpcServer } from '../ttrpc/index.ts'
import type { Logger } from '../types/logger.ts'
import { containerServiceHandlers } from './container-service.ts'
import { getGuestDetails } from './guest-details.ts'
import { guestSyncHandlers } from './guest-sync.ts'
import type { Sandbox } from './sandbox.ts'
import { AGENT_VERSION } from './version.ts'

export interface AgentServiceDeps {
  sandbox: Sandbox
  logger: Logger
  /** Storage driver names this agent handles (reported in GetGuestDetails). */
  storageHandlers?: string[]
}

export function registerAgentServices(server: TtrpcServer, deps: AgentServiceDeps): void {
  const { sandbox, logger } = deps
  server.register(Health, {
    check: async () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
    version: async () => ({ grpcVersion: 'ttrpc', agentVersion: AGENT_VERSION }),
  })
  server.register(AgentService, {
    createSandbox: async (req) => {
      logger.info({ sandboxId: req.sandboxId }, 'CreateSandbox')
      await sandbox.createSandbox({
        sandboxId: req.sandboxId,
        hostname: req.hostname,
        dns: req.dns,
        storages: req.storages,
        kernelModuleCount: req.kernelModules.length,
      })
      return {}
    },
    getGuestDetails: async (req) => getGuestDetails({ memBlockSize: req.memBlockSize, memHotplugProbe: req.memHotplugProbe }, deps.storageHandlers ?? []),
    // Containers, processes, CopyFile and DestroySandbox (issue 5); their CreateContainer/RemoveContainer/
    // DestroySandbox wrap the storage side of the sandbox (called first on create, last on remove).
    ...containerServiceHandlers({ sandbox, logger }),
    // A VM from a template carries the template's RNG state and clock: the runtime reseeds and syncs.
    ...guestSyncHandlers({ logger }),
  })
}
