// util.parseArgs with kataref's error style: "kataref <cmd>: unknown option '--x'" plus the usage.
import { parseArgs, type ParseArgsConfig } from 'node:util'

export class UsageError extends Error {
  constructor(readonly command: string, problem: string, readonly usage: string) {
    super(`kataref ${command}: ${problem}`)
    this.name = 'UsageError'
  }
}

type Options = NonNullable<ParseArgsConfig['options']>

export function parseCommandArgs<O extends Options>(command: string, usage: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true })
  } catch (e) {
    const err = e as Error & { code?: string }
    let problem = err.message
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(err.message)?.[1] ?? '?'
      problem = `unknown option '${flag}'`
    } else if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']+)'/.exec(err.message)?.[1] ?? '?'
      problem = `unexpected argument '${arg}'`
    } else if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      problem = err.message.replace(/^Option /, 'option ')
    }
    throw new UsageError(command, problem, usage)
  }
}

export interface ShardArg {
  index: number
  count: number
}

export function parseShard(command: string, usage: string, s: string): ShardArg {
  const m = /^(\d+)\/(\d+)$/.exec(s)
  const index = Number(m?.[1])
  const count = Number(m?.[2])
  if (!m || count < 1 || index < 1 || index > count) throw new UsageError(command, `--shard must be i/n with 1 <= i <= n, got '${s}'`, usage)
  return { index, count }
}

export function parseRegExp(command: string, usage: string, flag: string, s: string): RegExp {
  try {
    return new RegExp(s)
  } catch (e) {
    throw new UsageError(command, `${flag}: invalid regular expression '${s}': ${(e as Error).message}`, usage)
  }
}
