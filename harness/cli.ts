// The kataref command line (launched by bin/kataref.mjs). Each command parses its own flags with
// util.parseArgs; usage errors exit 2 with the command's usage.
import { KatarefError } from '../impl/types/errors.ts'
import { UsageError } from './cli/args.ts'
import { conformanceCommand } from './cli/conformance.ts'
import { DELEGATES, delegateCommand } from './cli/delegate.ts'
import { benchCommand } from './cli/bench.ts'
import { imageCommand } from './cli/image.ts'
import { reportCommand } from './cli/report.ts'
import { runCommand } from './cli/run.ts'
import { vmCommand } from './cli/vm.ts'

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  conformance: { summary: 'run the conformance scenarios and write reports', run: conformanceCommand },
  run: { summary: 'run one scenario (--keep leaves its guest up)', run: runCommand },
  report: { summary: 'report merge: merge shard reports', run: reportCommand },
  vm: { summary: 'vm shell|stop <run-dir>: reach or stop a guest kept by run --keep', run: vmCommand },
  bench: { summary: 'run the benchmarks under bench/ (all, or one by name)', run: benchCommand },
  image: { summary: 'image build / image inspect: guest disk images (EROFS layers, dm-verity, GPT VMDK)', run: imageCommand },
  config: {
    summary: 'config show [--config FILE]: the effective configuration.toml values',
    run: async (argv: string[]) => {
      const [sub, ...rest] = argv
      const { configShow, CONFIG_SHOW_USAGE } = await import('../impl/types/config/config-show.ts')
      if (sub === 'show') return configShow(rest)
      if (sub === '--help' || sub === '-h') return (process.stdout.write(CONFIG_SHOW_USAGE), 0)
      process.stderr.write(`kataref config: expected 'show'${sub ? `, got '${sub}'` : ''}\n${CONFIG_SHOW_USAGE}`)
      return 2
    },
  },
  factory: { summary: 'factory init|status|destroy: the VM template (QEMU, x-ignore-shared)', run: async (argv: string[]) => (await import('../impl/runtime/factory/factory-command.ts')).factoryCommand(argv) },
  ...Object.fromEntries(Object.entries(DELEGATES).map(([name, d]) => [name, { summary: d.summary, run: (argv: string[]) => delegateCommand(name, argv) }])),
}

export const USAGE = `usage: kataref <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(13)}${c.summary}`)
  .join('\n')}

'kataref <command> --help' describes a command.`

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE + '\n')
    return cmd === undefined ? 2 : 0
  }
  const c = COMMANDS[cmd]
  if (!c) {
    process.stderr.write(`kataref: unknown command '${cmd}'\n${USAGE}\n`)
    return 2
  }
  try {
    return await c.run(rest)
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\n${e.usage}\n`)
      return 2
    }
    // kataref's own errors already say what went wrong; anything else is a bug, so show its stack.
    const text = e instanceof KatarefError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)
    process.stderr.write(`kataref ${cmd}: ${text}\n`)
    return 1
  }
}
