// `kataref config show`: the effective configuration (after adjust/validate) as TOML, every
// modelled key present, in schema order. Parsing the output gives back the same config.
import { AGENT_KEYS, FACTORY_KEYS, HYPERVISOR_KEYS, type KeySpec, RUNTIME_KEYS } from './schema.ts'
import type { KatarefConfig } from './toml-config.ts'

/** Shortest decimal that reads back as the same f32 (0.2 rather than 0.20000000298023224). */
export function formatF32(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const f = Math.fround(v)
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p))
    if (Math.fround(s) === f) return String(s)
  }
  return String(f)
}

function formatValue(v: unknown, type: KeySpec<unknown>['type']): string {
  switch (type) {
    case 'float': {
      const s = formatF32(v as number)
      return /[.e]/.test(s) ? s : `${s}.0`
    }
    case 'u32':
      return String(v)
    case 'bool':
      return v ? 'true' : 'false'
    case 'string':
      return JSON.stringify(v)
    case 'string[]':
      return `[${(v as string[]).map((s) => JSON.stringify(s)).join(', ')}]`
  }
}

function section<T>(lines: string[], header: string, obj: T, specs: readonly KeySpec<T>[]): void {
  if (lines.length > 0) lines.push('')
  lines.push(`[${header}]`)
  for (const s of specs) lines.push(`${s.key} = ${formatValue(obj[s.prop], s.type)}`)
}

export function formatEffectiveConfig(config: KatarefConfig): string {
  const lines: string[] = []
  section(lines, 'runtime', config.runtime, RUNTIME_KEYS)
  for (const hv of Object.values(config.hypervisor)) {
    section(lines, `hypervisor.${quoteKey(hv.name)}`, hv, HYPERVISOR_KEYS)
    section(lines, `hypervisor.${quoteKey(hv.name)}.factory`, hv.factory, FACTORY_KEYS)
  }
  for (const a of Object.values(config.agent)) section(lines, `agent.${quoteKey(a.name)}`, a, AGENT_KEYS)
  return `${lines.join('\n')}\n`
}

function quoteKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k)
}
