// Loading `configuration.toml` (runtime-rs `TomlConfig::load_from_file` + adjust/validate).
// Path choice, highest first: explicit path (CLI / shim option), `KATA_CONF_FILE`, then the
// runtime-rs search list (kata-types/src/config/default.rs, first existing file wins).
import { existsSync, readFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { parse, TomlError } from 'smol-toml'
import { errorMessage } from '../errors.ts'
import { adjustConfig } from './adjust.ts'
import { ConfigError, typeProblem } from './config-error.ts'
import { AGENT_KEYS, FACTORY_KEYS, HYPERVISOR_KEYS, isTable, readSection, RUNTIME_KEYS } from './schema.ts'
import type { AgentConfig, HostResources, HypervisorConfig, KatarefConfig, RuntimeConfig } from './toml-config.ts'

export const KATA_CONF_FILE_ENV = 'KATA_CONF_FILE'

/** runtime-rs default search list, in order. */
export const DEFAULT_CONFIG_SEARCH_PATHS: readonly string[] = [
  '/etc/kata-containers/runtime-rs/configuration.toml',
  '/usr/share/defaults/kata-containers/runtime-rs/configuration.toml',
  '/opt/kata/share/defaults/kata-containers/runtime-rs/configuration.toml',
]

export interface LoadConfigurationOptions {
  /** Explicit file; wins over the environment and the search list. */
  path?: string
  /** Environment to read `KATA_CONF_FILE` from (default `process.env`). */
  env?: Record<string, string | undefined>
  searchPaths?: readonly string[]
  /** Host CPU count and RAM for the clamps (default: this machine). */
  host?: HostResources
}

export interface LoadedConfiguration {
  config: KatarefConfig
  /** The file that was read. */
  path: string
  warnings: string[]
}

export function hostResources(): HostResources {
  return { cpus: Math.max(cpus().length, 1), memoryMiB: Math.floor(totalmem() / 1048576) }
}

/** Which file would be read, and why; throws ConfigError when nothing is found. */
export function resolveConfigPath(opts: LoadConfigurationOptions = {}): string {
  if (opts.path) return opts.path
  const env = opts.env ?? process.env
  const fromEnv = env[KATA_CONF_FILE_ENV]
  if (fromEnv) return fromEnv
  const search = opts.searchPaths ?? DEFAULT_CONFIG_SEARCH_PATHS
  for (const p of search) if (existsSync(p)) return p
  throw new ConfigError('configuration.toml', '',
    `no configuration file found: no explicit path, ${KATA_CONF_FILE_ENV} unset, none of ${search.join(', ')} exists`)
}

export function loadConfiguration(opts: LoadConfigurationOptions = {}): LoadedConfiguration {
  const path = resolveConfigPath(opts)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(path, '', `cannot read configuration file: ${errorMessage(e)}`, {}, { cause: e })
  }
  const { config, warnings } = parseConfiguration(text, path, opts.host ?? hostResources())
  return { config, path, warnings }
}

/** Parses, type-checks, adjusts and validates TOML text; `file` is only used in messages. */
export function parseConfiguration(text: string, file: string, host: HostResources): { config: KatarefConfig; warnings: string[] } {
  let doc: Record<string, unknown>
  try {
    doc = parse(text, { integersAsBigInt: true, unsafeKeyBehaviour: 'throw' }) as Record<string, unknown>
  } catch (e) {
    const where = e instanceof TomlError ? ` at line ${e.line} column ${e.column}` : ''
    const first = errorMessage(e).split('\n')[0]
    throw new ConfigError(file, '', `invalid TOML${where}: ${first}`, {}, { cause: e })
  }
  const warnings: string[] = []
  const config: KatarefConfig = {
    runtime: readRuntime(doc, file, warnings),
    hypervisor: readNamedSections(doc, 'hypervisor', file, warnings, readHypervisor),
    agent: readNamedSections(doc, 'agent', file, warnings, readAgent),
  }
  for (const key of Object.keys(doc)) {
    if (key !== 'runtime' && key !== 'hypervisor' && key !== 'agent') {
      const hint = key === 'factory' ? ' (runtime-rs reads [hypervisor.<name>.factory])' : ''
      warnings.push(`${file}: [${key}]: unknown section ignored${hint}`)
    }
  }
  adjustConfig(config, { file, host, warnings })
  return { config, warnings }
}

function sectionTable(v: unknown, file: string, section: string): Record<string, unknown> {
  if (!isTable(v)) throw new ConfigError(file, `[${section}]`, typeProblem('table', v))
  return v
}

function readRuntime(doc: Record<string, unknown>, file: string, warnings: string[]): RuntimeConfig {
  const t = doc.runtime === undefined ? {} : sectionTable(doc.runtime, file, 'runtime')
  return readSection(t, RUNTIME_KEYS, { file, section: 'runtime', warnings })
}

function readNamedSections<T>(
  doc: Record<string, unknown>, group: string, file: string, warnings: string[],
  read: (t: Record<string, unknown>, name: string, file: string, warnings: string[]) => T,
): Record<string, T> {
  const out: Record<string, T> = {}
  if (doc[group] === undefined) return out
  const t = sectionTable(doc[group], file, group)
  for (const [name, v] of Object.entries(t)) out[name] = read(sectionTable(v, file, `${group}.${name}`), name, file, warnings)
  return out
}

function readHypervisor(t: Record<string, unknown>, name: string, file: string, warnings: string[]): HypervisorConfig {
  const section = `hypervisor.${name}`
  const scalars = readSection(t, HYPERVISOR_KEYS, { file, section, warnings, skip: ['factory'] })
  const ft = t.factory === undefined ? {} : sectionTable(t.factory, file, `${section}.factory`)
  // The factory section denies unknown fields upstream (serde deny_unknown_fields).
  const factory = readSection(ft, FACTORY_KEYS, { file, section: `${section}.factory`, warnings, denyUnknown: true })
  return { name, ...scalars, factory }
}

function readAgent(t: Record<string, unknown>, name: string, file: string, warnings: string[]): AgentConfig {
  return { name, ...readSection(t, AGENT_KEYS, { file, section: `agent.${name}`, warnings }) }
}
