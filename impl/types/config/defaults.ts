// Serde defaults of each section (the values before adjust/validate), for building configs in
// code and tests without a file.
import { AGENT_KEYS, defaultsOf, FACTORY_KEYS, HYPERVISOR_KEYS, RUNTIME_KEYS } from './schema.ts'
import type { AgentConfig, HypervisorConfig, KatarefConfig, RuntimeConfig } from './toml-config.ts'

export function defaultHypervisorConfig(name: string, overrides: Partial<HypervisorConfig> = {}): HypervisorConfig {
  return { name, ...defaultsOf(HYPERVISOR_KEYS), factory: defaultsOf(FACTORY_KEYS), ...overrides }
}

export function defaultRuntimeConfig(overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return { ...defaultsOf(RUNTIME_KEYS), ...overrides }
}

export function defaultAgentConfig(name: string, overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { name, ...defaultsOf(AGENT_KEYS), ...overrides }
}

/** A config with one hypervisor section and one agent section, named in `[runtime]`. */
export function makeConfig(hv: HypervisorConfig, runtime: Partial<RuntimeConfig> = {}): KatarefConfig {
  return {
    runtime: defaultRuntimeConfig({ hypervisorName: hv.name, agentName: 'kata', ...runtime }),
    hypervisor: { [hv.name]: hv },
    agent: { kata: defaultAgentConfig('kata') },
  }
}
