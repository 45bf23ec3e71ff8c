// A QEMU VM whose agent answers grpc.Health/Check: the boot sequence the shim, the VM factory's
// direct boot, the harness and the boot benchmark share. On any failure the VM is stopped before
// the error propagates, so a failed boot leaves no qemu process behind.
import { KataAgent } from '../agent/kata-agent.ts'
import { unixDialer } from '../agent/dialer.ts'
import { startQemuVm, type QemuVm, type QemuVmOptions } from '../hypervisor/qemu/qemu.ts'
import { errorMessage } from '../../types/errors.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'

export interface VmWithAgent {
  vm: QemuVm
  agent: KataAgent
  /** From launching QEMU until the agent answered. */
  readyMs: number
}

export interface StartVmWithAgentOptions {
  /** How long the agent may take to answer (default 120 s: a TCG boot on a loaded machine). */
  agentDeadlineMs?: number
  logger?: Logger
  signal?: AbortSignal
}

export async function startVmWithAgent(vmOptions: QemuVmOptions, opts: StartVmWithAgentOptions = {}): Promise<VmWithAgent> {
  const log = opts.logger ?? nullLogger
  const t0 = performance.now()
  // startQemuVm stops the VM itself when start() fails.
  const vm = await startQemuVm({ logger: log, ...vmOptions })
  try {
    opts.signal?.throwIfAborted()
    const agent = await KataAgent.connect({
      dialer: unixDialer(vm.agentSocketPath),
      deadlineMs: opts.agentDeadlineMs ?? 120_000,
      consoleTail: async (n) => vm.consoleTail(n),
      logger: log,
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
    return { vm, agent, readyMs: performance.now() - t0 }
  } catch (e) {
    await vm.stop().catch((se: unknown) => log.warn({ err: errorMessage(se) }, 'stop after a failed boot'))
    throw e
  }
}
