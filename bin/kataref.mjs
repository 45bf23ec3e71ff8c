#!/usr/bin/env node
// kataref CLI launcher: registers tsx's ESM loader, then runs harness/cli.ts. Paths are resolved from
// this file, so it works from any directory and as an installed package bin (symlinked or not).
import { realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { register } from 'tsx/esm/api'

register()
const root = join(dirname(realpathSync(fileURLToPath(import.meta.url))), '..')
const { main } = await import(pathToFileURL(join(root, 'harness', 'cli.ts')).href)
process.exitCode = await main(process.argv.slice(2))
