// Sandbox network choice (spec §9): when `<dan_conf>/<sandbox-id>.json` exists the sandbox gets
// no network namespace, its interfaces come from the file (DAN wins over netns) and netns
// rescans are skipped.
import type { RuntimeConfig } from '../../../types/config/index.ts'
import { type DanConfig, loadDanConfig, type ParseDanOptions } from './dan-config.ts'

export type SandboxNetworkPlan =
  | { kind: 'dan'; path: string; config: DanConfig; netns: 'none'; rescanNetns: false }
  | { kind: 'netns' }

export function sandboxNetworkPlan(runtime: Pick<RuntimeConfig, 'danConf'>, sandboxId: string, opts: ParseDanOptions = {}): SandboxNetworkPlan {
  const dan = loadDanConfig(runtime.danConf, sandboxId, opts)
  return dan ? { kind: 'dan', path: dan.path, config: dan.config, netns: 'none', rescanNetns: false } : { kind: 'netns' }
}
