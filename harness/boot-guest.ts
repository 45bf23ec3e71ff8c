// Boots a real guest for scenarios: guest images (built once per run, cached by content), a QemuVm,
// the independent debug shell (witness) and the runtime's agent client, ready when the agent answers
// grpc.Health/Check. Every step registers its teardown before the next can fail.
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { buildGuestImages, type GuestImages } from '../images/guest/index.ts'
import { DebugConsole } from '../impl/runtime/hypervisor/qemu/debug-console.ts'
import { startVmWithAgent, type VmWithAgent } from '../impl/runtime/sandbox/vm-with-agent.ts'
import { kernelCmdline } from '../impl/runtime/hypervisor/qemu/cmdline.ts'
import { Code, KatarefError, errorMessage } from '../impl/types/errors.ts'
import { nullLogger } from '../impl/types/logger.ts'
import { ENV } from './env.ts'
import type { BootGuest, BootedGuest } from './guest.ts'

/** Deadlines for a TCG boot on a loaded 2-core machine; KVM needs a fraction. */
const DEBUG_READY_MS = 120_000
const AGENT_READY_MS = 120_000

let images: Promise<GuestImages> | undefined

/** The runner builds images once and passes them as JSON; a worker on its own builds (or reuses) them. */
export function guestImages(): Promise<GuestImages> {
  const fromRunner = process.env[ENV.guestImages]
  images ??= fromRunner ? Promise.resolve(JSON.parse(fromRunner) as GuestImages) : buildGuestImages()
  return images
}

export const bootGuest: BootGuest<BootedGuest> = async (opts) => {
  const log = opts.log ?? nullLogger
  const img = await guestImages()
  const runDir = opts.runRoot ? mkdtempSync(join(opts.runRoot, 'vm-')) : undefined
  const started = performance.now()
  const secs = () => ((performance.now() - started) / 1000).toFixed(1)
  progress(`booting ${runDir ? basename(runDir) : 'a guest'} (kernel ${img.kernelVersion})`)
  let booted: VmWithAgent
  try {
    booted = await startVmWithAgent(
      {
        kernel: img.kernel, initrd: img.initramfs, rootfs: img.rootfs,
        // --keep: the VM must outlive the scenario worker (the CLI keeps the run root then).
        outliveOwner: opts.keep === true,
        ...(runDir ? { runDir } : {}),
        ...(opts.disks?.length ? { disks: opts.disks } : {}),
        ...(opts.kernelParams?.length ? { append: kernelCmdline({ extra: opts.kernelParams }) } : {}),
        ...(opts.pciBridges ? { pciBridges: opts.pciBridges } : {}),
      },
      { agentDeadlineMs: AGENT_READY_MS, logger: log, ...(opts.signal ? { signal: opts.signal } : {}) },
    )
  } catch (e) {
    // The VM is already stopped; the not-ready error carries the console tail.
    if (runDir) await rm(runDir, { recursive: true, force: true })
    throw e
  }
  const { vm, agent } = booted
  // vm.stop() keeps a run dir it was given (minus its sockets): the dir we made is ours to remove.
  const undo: (() => Promise<void> | void)[] = [() => agent.close(), () => vm.stop(), () => (runDir ? rm(runDir, { recursive: true, force: true }) : undefined)]
  const consoleTail = async (n: number) => vm.consoleTail(n)
  const id = basename(vm.runDir)
  progress(`${id}: agent ready after ${secs()} s (${vm.accel})`)
  try {
    opts.signal?.throwIfAborted()
    const debug = await DebugConsole.connect(vm.debugSocketPath, { timeoutMs: DEBUG_READY_MS, consoleTail: () => vm.consoleTail(40), logger: log })
    undo.unshift(() => debug.close())
    const bootMs = Math.round(performance.now() - started)
    progress(`${id}: debug shell answered after ${secs()} s`)

    let stopped: Promise<void> | undefined
    const guest: BootedGuest = {
      id,
      kernelVersion: img.kernelVersion,
      bootMs,
      agentSocketPath: vm.agentSocketPath,
      qmpSocketPath: vm.qmpSocketPath,
      debugSocketPath: vm.debugSocketPath,
      consoleLogPath: vm.consoleLogPath,
      runDir: vm.runDir,
      agent,
      vm,
      debug: {
        async run(cmd, o) {
          const r = await debug.run(cmd, o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {})
          return { stdout: r.stdout, exitCode: r.exitCode }
        },
      },
      consoleTail,
      // With --keep the fixture never calls stop(); otherwise it tears everything down, in reverse.
      stop: () => (stopped ??= runUndo(undo)),
    }
    return guest
  } catch (e) {
    const tail = vm.consoleTail(40)
    await runUndo(undo)
    if (e instanceof KatarefError) {
      // Keep the original error, add where the console log was so the fixture can attach it.
      Object.assign(e.context, { consoleLogPath: vm.consoleLogPath })
      throw e
    }
    throw new KatarefError(`boot guest: ${errorMessage(e)}\n--- guest console ---\n${tail}`, Code.INTERNAL, { consoleLogPath: vm.consoleLogPath }, { cause: e })
  }
}

/** Boot progress on the terminal (the runner shows workers' stderr). */
function progress(line: string): void {
  process.stderr.write(`[guest] ${line}\n`)
}

async function runUndo(undo: (() => Promise<void> | void)[]): Promise<void> {
  const errors: unknown[] = []
  for (const u of undo) {
    try {
      await u()
    } catch (e) {
      errors.push(e)
    }
  }
  if (errors.length) throw new KatarefError(`guest teardown: ${errors.map(errorMessage).join('; ')}`, Code.INTERNAL)
}
