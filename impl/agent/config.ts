import type { LogLevel } from '../types/logger.ts'

/** How this agent instance behaves; the guest and host-mode defaults differ only here. */
export interface AgentConfig {
  /** Where sandbox state lives (Kata: /run/kata-containers). */
  rootDir: string
  /** Set the kernel hostname on CreateSandbox. Only in a guest: on a host it would rename the machine. */
  manageHostname: boolean
  logLevel: LogLevel
  /** devicemapper support for dm-verity layers (KATAREF_USE_DEVMAPPER, default on). */
  devmapper?: boolean
  /** Honour debug-only `X-kataref.failpoint=` storage options (`--failpoints`, default off). */
  failpoints?: boolean
}

export const KATA_RUN_DIR = '/run/kata-containers'

export function guestAgentConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return { rootDir: KATA_RUN_DIR, manageHostname: true, logLevel: 'info', ...overrides }
}
