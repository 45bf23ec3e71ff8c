// The guest agent as one ESM file (esbuild: platform node, format esm, target node20) plus the
// part of koffi it imports at run time (package.json, index/indirect JS, the linux_x64 prebuild).
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { build } from 'esbuild'
import { ToolError, errorMessage } from '../../impl/types/errors.ts'
import { REPO_ROOT } from './cache.ts'

export const DEFAULT_AGENT_ENTRY = join(REPO_ROOT, 'impl', 'agent', 'main.ts')

// CJS dependencies (pino, …) call require() for node builtins; give the ESM bundle one.
const REQUIRE_SHIM = "import { createRequire as __kataref_createRequire } from 'node:module';\nconst require = __kataref_createRequire(import.meta.url);"

/** Bundles `entry` into a single ESM file; returns its text. */
export async function bundleAgent(entry: string): Promise<string> {
  if (!existsSync(entry)) throw new ToolError('esbuild', `agent entry ${entry} does not exist`)
  try {
    const r = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['koffi'],
      banner: { js: REQUIRE_SHIM },
      write: false,
      outfile: 'agent.mjs',
      logLevel: 'silent',
      legalComments: 'none',
      absWorkingDir: REPO_ROOT,
      // Entries outside the repo (stand-ins in temp dirs) still resolve the repo's packages.
      nodePaths: [join(REPO_ROOT, 'node_modules')],
    })
    const out = r.outputFiles[0]
    if (!out) throw new Error('esbuild produced no output')
    return out.text
  } catch (e) {
    throw new ToolError('esbuild', `bundling ${entry} failed: ${errorMessage(e)}`, { entry }, { cause: e })
  }
}

/** koffi files to ship, as [source, path relative to the koffi folder] pairs. */
export function koffiFiles(nodeModules = join(REPO_ROOT, 'node_modules')): Array<[string, string]> {
  const root = join(nodeModules, 'koffi')
  if (!existsSync(join(root, 'package.json'))) throw new ToolError('koffi', `koffi is not installed under ${nodeModules}`)
  // package.json, the top-level index/indirect entry points and every JS file under src/ (the
  // entry points import src/koffi/index.js, which imports src/koffi/src/*.js).
  const rel = ['package.json', 'index.js', 'index.cjs', 'indirect.js', 'indirect.cjs'].filter((r) => existsSync(join(root, r)))
  const walk = (dir: string): void => {
    for (const d of readdirSync(join(root, dir), { withFileTypes: true })) {
      const r = `${dir}/${d.name}`
      if (d.isDirectory()) walk(r)
      else if (/\.(js|cjs|mjs)$/.test(d.name)) rel.push(r)
    }
  }
  if (existsSync(join(root, 'src'))) walk('src')
  rel.sort()
  const files: Array<[string, string]> = rel.map((r) => [join(root, r), r])
  // koffi looks for build/koffi/<triplet>/koffi.node next to its sources (src/koffi/../../build/koffi).
  const prebuilds = [join(nodeModules, '@koromix', 'koffi-linux-x64', 'linux_x64', 'koffi.node'), join(root, 'build', 'koffi', 'linux_x64', 'koffi.node')]
  const prebuild = prebuilds.find((p) => existsSync(p))
  if (!prebuild) throw new ToolError('koffi', `no linux_x64 prebuild (looked at ${prebuilds.join(', ')})`)
  files.push([prebuild, 'build/koffi/linux_x64/koffi.node'])
  return files
}

export function koffiVersion(nodeModules = join(REPO_ROOT, 'node_modules')): string {
  return (JSON.parse(readFileSync(join(nodeModules, 'koffi', 'package.json'), 'utf8')) as { version: string }).version
}

export function copyKoffi(destKoffiDir: string, files = koffiFiles()): void {
  for (const [src, rel] of files) {
    const dest = join(destKoffiDir, rel)
    mkdirSync(dirname(dest), { recursive: true })
    copyFileSync(src, dest)
  }
}
