// `kataref config show [--config <file>]`: prints the effective configuration; warnings and
// errors go to stderr. The CLI owner wires `configShow` into bin/kataref.
import { errorMessage } from '../errors.ts'
import { formatEffectiveConfig } from './format.ts'
import { loadConfiguration, type LoadConfigurationOptions } from './load.ts'

export interface ConfigShowIo {
  stdout: { write(s: string): unknown }
  stderr: { write(s: string): unknown }
  env?: Record<string, string | undefined>
  /** Passed through to loadConfiguration (tests). */
  load?: Omit<LoadConfigurationOptions, 'path' | 'env'>
}

export const CONFIG_SHOW_USAGE = 'usage: kataref config show [--config <configuration.toml>]\n'

/** `argv` are the arguments after `config show`. Returns the process exit code. */
export function configShow(argv: readonly string[], io: ConfigShowIo = { stdout: process.stdout, stderr: process.stderr }): number {
  let path: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '-h' || a === '--help') {
      io.stdout.write(CONFIG_SHOW_USAGE)
      return 0
    }
    if (a === '--config' || a === '-c') {
      const next = argv[++i]
      if (next === undefined) {
        io.stderr.write(`kataref config show: ${a} needs a file\n${CONFIG_SHOW_USAGE}`)
        return 2
      }
      path = next
    } else if (a.startsWith('--config=')) {
      path = a.slice('--config='.length)
    } else {
      io.stderr.write(`kataref config show: unknown argument ${JSON.stringify(a)}\n${CONFIG_SHOW_USAGE}`)
      return 2
    }
  }
  try {
    const { config, path: used, warnings } = loadConfiguration({ ...io.load, path, env: io.env ?? process.env })
    for (const w of warnings) io.stderr.write(`warning: ${w}\n`)
    io.stdout.write(`# effective configuration loaded from ${used}\n`)
    io.stdout.write(formatEffectiveConfig(config))
    return 0
  } catch (e) {
    io.stderr.write(`kataref config show: ${errorMessage(e)}\n`)
    return 1
  }
}
