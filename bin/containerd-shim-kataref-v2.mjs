#!/usr/bin/env node
// containerd shim v2 launcher (runtime `io.containerd.kataref.v2`): registers tsx's ESM loader, then
// runs impl/runtime/shim/main.ts. `start` re-executes this file for the daemon.
import { realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { register } from 'tsx/esm/api'

register()
const root = join(dirname(realpathSync(fileURLToPath(import.meta.url))), '..')
const { main } = await import(pathToFileURL(join(root, 'impl', 'runtime', 'shim', 'main.ts')).href)
const code = await main(process.argv.slice(2))
// stdout is a pipe to containerd: let it drain, then exit (the daemon never gets here).
process.stdout.write('', () => process.exit(code))
