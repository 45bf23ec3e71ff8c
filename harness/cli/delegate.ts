// Subcommands whose implementation lives in modules other people own. Imported lazily, so a missing
// or broken module only affects its own subcommand, with a message that says which module.
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../paths.ts'
import { errorMessage } from '../../impl/types/errors.ts'

export interface Delegate {
  /** Path relative to the package root; the module exports `main(argv: string[]): Promise<number>`. */
  module: string
  summary: string
}

export const DELEGATES: Record<string, Delegate> = {
  agent: { module: 'impl/agent/main.ts', summary: 'run the guest agent (on the host: --listen unix:PATH)' },
}

/** Imports a module of the package lazily; null (after printing why) when it is missing or broken. */
export async function importOptional<T>(command: string, module: string, root = PACKAGE_ROOT): Promise<T | null> {
  const path = join(root, module)
  if (!existsSync(path)) {
    process.stderr.write(`kataref ${command}: not available: ${module} does not exist in this build\n`)
    return null
  }
  try {
    return (await import(pathToFileURL(path).href)) as T
  } catch (e) {
    process.stderr.write(`kataref ${command}: cannot load ${module}: ${errorMessage(e)}\n`)
    return null
  }
}

export async function delegateCommand(name: string, argv: string[], root = PACKAGE_ROOT): Promise<number> {
  const d = DELEGATES[name]
  if (!d) throw new Error(`no delegate for '${name}'`)
  const mod = await importOptional<{ main?: unknown }>(name, d.module, root)
  if (!mod) return 1
  if (typeof mod.main !== 'function') {
    process.stderr.write(`kataref ${name}: ${d.module} does not export main(argv)\n`)
    return 1
  }
  return (await (mod.main as (argv: string[]) => Promise<number> | number)(argv)) ?? 0
}
