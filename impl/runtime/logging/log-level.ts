// Log-level resolution (spec §8): runtime-rs manager.rs / shim logger.rs, Go shim service.go.
// Everything logs at info unless debug is asked for: containerd's `-debug` shim flag (shim base
// level), or a section's `enable_debug` / `log_level` (per component).
import { LOG_LEVEL_NAMES, type KatarefConfig } from '../../types/config/index.ts'
import type { LogLevel } from '../../types/logger.ts'

/** A level name runtime-rs accepts in `log_level` (the list config load warns against). */
export type KataLogLevel = (typeof LOG_LEVEL_NAMES)[number]

/** Components whose level is set from their own section. */
export type LogComponent = 'runtimes' | 'hypervisor' | 'agent'

/**
 * `debug` when enable_debug is true and log_level is `info`; otherwise log_level
 * (so enable_debug never lowers an explicit trace/warn). Unknown strings → info.
 */
export function effectiveLogLevel(enableDebug: boolean, logLevel: string): KataLogLevel {
  if (enableDebug && logLevel === 'info') return 'debug'
  return (LOG_LEVEL_NAMES as readonly string[]).includes(logLevel) ? (logLevel as KataLogLevel) : 'info'
}

/** pino has no `critical`; it maps to `fatal`. */
export function toPinoLevel(level: KataLogLevel): LogLevel {
  return level === 'critical' ? 'fatal' : level
}

/** Did containerd start the shim with debug? Go flag syntax: `-debug`, `--debug`, `-debug=true`. */
export function containerdDebugRequested(argv: readonly string[]): boolean {
  let debug = false
  for (const a of argv) {
    const m = /^--?debug(?:=(.*))?$/.exec(a)
    if (!m) continue
    const v = m[1]
    debug = v === undefined ? true : ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)
  }
  return debug
}

/** Shim base level (runtime-rs shim logger, Go shim since 631fd96715): debug with containerd debug, else info. */
export function shimBaseLevel(containerdDebug: boolean): 'debug' | 'info' {
  return containerdDebug ? 'debug' : 'info'
}

export interface ResolvedLogLevels {
  shim: KataLogLevel
  runtimes: KataLogLevel
  hypervisor: KataLogLevel
  agent: KataLogLevel
}

/** Per-component levels: `[runtime]`, `[hypervisor.<hypervisor_name>]`, `[agent.<agent_name>]`. */
export function resolveLogLevels(config: KatarefConfig, containerdDebug = false): ResolvedLogLevels {
  const rt = config.runtime
  const hv = config.hypervisor[rt.hypervisorName]
  const agent = config.agent[rt.agentName]
  return {
    shim: shimBaseLevel(containerdDebug),
    runtimes: effectiveLogLevel(rt.enableDebug, rt.logLevel),
    hypervisor: hv ? effectiveLogLevel(hv.enableDebug, hv.logLevel) : 'info',
    agent: agent ? effectiveLogLevel(agent.enableDebug, agent.logLevel) : 'info',
  }
}
