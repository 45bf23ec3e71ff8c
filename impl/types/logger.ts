// Structured JSON logs (pino). Level `info` unless the caller or KATAREF_LOG_LEVEL asks for more.
// Library code takes a Logger from its caller; `nullLogger` is the default so nothing prints by accident.
import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface LoggerOptions {
  level?: LogLevel
  /** Component name, recorded as `component` on every line. */
  component?: string
  destination?: DestinationStream
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const envLevel = process.env.KATAREF_LOG_LEVEL as LogLevel | undefined
  const level = opts.level ?? (envLevel && LOG_LEVELS.includes(envLevel) ? envLevel : 'info')
  const base = opts.component ? { component: opts.component } : {}
  return opts.destination ? pino({ level, base }, opts.destination) : pino({ level, base })
}

export const nullLogger: Logger = pino({ level: 'silent' })
