// Errors raised by the QMP client. A QMP `error` response keeps its `class` and `desc`.
import { Code, KatarefError } from '../../../../types/errors.ts'

/** QEMU answered a command with `{"error": {"class", "desc"}}`. */
export class QmpCommandError extends KatarefError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
    options?: ErrorOptions,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`, classToCode(errorClass), { command, class: errorClass, desc }, options)
  }
}

/** The QMP stream ended, failed, or the client was closed. */
export class QmpClosedError extends KatarefError {
  constructor(reason: string, options?: ErrorOptions) {
    super(`qmp: closed: ${reason}`, Code.UNAVAILABLE, { reason }, options)
  }
}

/** The peer broke the protocol (no greeting, unparsable line, unexpected message). */
export class QmpProtocolError extends KatarefError {
  constructor(problem: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`qmp: protocol: ${problem}`, Code.INTERNAL, context, options)
  }
}

/** An operation was cancelled through its AbortSignal. */
export class QmpAbortedError extends KatarefError {
  constructor(what: string, options?: ErrorOptions) {
    super(`qmp: ${what}: aborted`, Code.CANCELLED, {}, options)
  }
}

function classToCode(cls: string): Code {
  switch (cls) {
    case 'DeviceNotFound':
      return Code.NOT_FOUND
    case 'CommandNotFound':
      return Code.UNIMPLEMENTED
    default:
      return Code.INTERNAL
  }
}
