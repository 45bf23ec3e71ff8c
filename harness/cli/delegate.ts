// Subcommands whose implementation lives in modules other people own. Imported lazily, so a missing
// or broken module only affects its own subcommand, with a message that says which module.
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../paths.ts'

export interface Delegate {
  /** Path relative to the package root; the module exports `main(argv: string[]): Promise<number>`. */
  module: string
  summary: string
}

export const DELEGATES: Record<string, Delegate> = {
  agent: { module: 'impl/agent/main.ts', summary: 'run the guest agent (on the host: --listen unix:PATH)' },
  image: { module: 'images/cli.ts', summary: 'build guest images (kernel, initramfs, rootfs)' },
  bench: { module: 'bench/cli.ts', summary: 'run the benchmarks' },
}

export async function delegateCommand(name: string, argv: string[], root = PACKAGE_ROOT): Promise<number> {
  const d = DELEGATES[name]
  if (!d) throw new Error(`no delegate for '${name}'`)
  const url = pathToFileURL(join(root, d.module)).href
  let mod: { main?: unknown }
  try {
    mod = (await import(url)) as { main?: unknown }
  } catch (e) {
    const err = e as Error & { code?: string; url?: string }
    if (err.code === 'ERR_MODULE_NOT_FOUND' && (err.url === url || err.message.includes(join(root, d.module)))) {
      process.stderr.write(`kataref ${name}: not available: ${d.module} does not exist in this build\n`)
    } else {
      process.stderr.write(`kataref ${name}: cannot load ${d.module}: ${err.message}\n`)
    }
    return 1
  }
  if (typeof mod.main !== 'function') {
    process.stderr.write(`kataref ${name}: ${d.module} does not export main(argv)\n`)
    return 1
  }
  return (await (mod.main as (argv: string[]) => Promise<number> | number)(argv)) ?? 0
}
