// kataref vm shell|stop <run-dir>: reach a guest left up by `kataref run --keep`, with our own tools
// (no socat needed): the witness shell on its debug port, and QMP `quit` on the launcher's monitor.
import { existsSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { runDirPaths } from '../../impl/runtime/hypervisor/qemu/cmdline.ts'
import { DebugConsole } from '../../impl/runtime/hypervisor/qemu/debug-console.ts'
import { connectQmpSocket } from '../../impl/runtime/hypervisor/qemu/qmp/index.ts'
import { parseCommandArgs, UsageError } from './args.ts'

/** Written by the runner next to kept guests (run-scenarios.ts). */
const KEPT_LIST = 'kept-guests.jsonl'

export const VM_USAGE = `usage: kataref vm shell <run-dir> [command...]   run a command (or read commands from stdin) in the guest's debug shell
       kataref vm stop <run-dir>                   quit the VM and remove its run dir`

export async function vmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('vm', VM_USAGE, argv, {}, true)
  if (values.help) {
    process.stdout.write(VM_USAGE + '\n')
    return 0
  }
  const [action, runDir, ...cmd] = positionals
  if (!runDir || (action !== 'shell' && action !== 'stop')) throw new UsageError('vm', 'expected shell or stop, then a run dir', VM_USAGE)
  const paths = runDirPaths(runDir)
  if (action === 'stop') {
    if (existsSync(paths.controlSocket)) {
      const qmp = await connectQmpSocket(paths.controlSocket, { readyTimeoutMs: 5_000 })
      await qmp.execute('quit').catch(() => undefined) // qemu may close the socket before answering
      qmp.close()
      for (let i = 0; i < 100 && existsSync(paths.qmpSocket); i++) await sleep(50)
    }
    await rm(runDir, { recursive: true, force: true })
    process.stdout.write(`stopped; removed ${runDir}\n`)
    // The run root the CLI kept for --keep goes too once its last guest is gone.
    const root = dirname(resolve(runDir))
    if (basename(root).startsWith('kataref-run-')) {
      const left = await readdir(root).catch(() => ['?'])
      if (left.every((f) => f === KEPT_LIST)) {
        await rm(root, { recursive: true, force: true })
        process.stdout.write(`removed ${root}\n`)
      }
    }
    return 0
  }
  const debug = await DebugConsole.connect(paths.debugSocket, { timeoutMs: 10_000 })
  try {
    const runOne = async (line: string): Promise<number> => {
      const r = await debug.run(line, { timeoutMs: 600_000 })
      process.stdout.write(r.stdout)
      process.stderr.write(r.stderr)
      return r.exitCode
    }
    if (cmd.length) return await runOne(cmd.join(' '))
    let last = 0
    for await (const line of createInterface({ input: process.stdin })) if (line.trim()) last = await runOne(line)
    return last
  } finally {
    debug.close()
  }
}
