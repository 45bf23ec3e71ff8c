// Errors raised while loading `configuration.toml`. Every message names the file, the key
// (as `[section] key`) and, for type errors, the expected TOML type, so an operator can fix
// the file without reading kataref's source.
import { Code, KatarefError } from '../errors.ts'

export class ConfigError extends KatarefError {
  constructor(
    readonly file: string,
    /** `[section] key`, or `[section]` for section-level problems, or '' for the whole file. */
    readonly key: string,
    readonly problem: string,
    context: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(`${file}: ${key ? `${key}: ` : ''}${problem}`, Code.INVALID_ARGUMENT, { file, key, ...context }, options)
  }
}

/** `expected <type>, got <what>` with a short rendering of the offending value. */
export function typeProblem(expected: string, value: unknown): string {
  return `expected ${expected}, got ${describeValue(value)}`
}

export function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `integer ${value}`
  if (typeof value === 'number') return `float ${value}`
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`
  if (typeof value === 'boolean') return `boolean ${value}`
  if (Array.isArray(value)) return 'array'
  if (value instanceof Date) return 'datetime'
  if (value !== null && typeof value === 'object') return 'table'
  return String(value)
}
