// ttrpc errors and the one place where thrown errors become wire statuses (like Go ttrpc's convertCode).
import { Code, KatarefError, errorMessage } from '../types/errors.ts'
import { codeName } from './codes.ts'

/** An error that crosses (or came across) a ttrpc connection as a status: `code` + `message`. */
export class TtrpcError extends KatarefError {
  constructor(code: Code, message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, code, context, options)
  }

  /** The status a server sends for this error. */
  toStatus(): WireStatus {
    return { code: this.code, message: this.message }
  }

  override toString(): string {
    return `${this.name}: ${codeName(this.code)}: ${this.message}`
  }
}

/** Sentinel text of the closed error, as in Go ttrpc (`ErrClosed`). */
export const CLOSED_MESSAGE = 'ttrpc: closed'

/** The connection ended (either side) while the call was outstanding, or a call was made after close. */
export class TtrpcClosedError extends TtrpcError {
  constructor(context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(Code.UNAVAILABLE, CLOSED_MESSAGE, context, options)
  }
}

/** A frame announced (or would need) more than the maximum data length (protocols.md §1.2, §1.7). */
export class FrameTooLargeError extends TtrpcError {
  constructor(readonly rejectedLength: number, readonly maxLength: number, context: Record<string, unknown> = {}) {
    super(
      Code.RESOURCE_EXHAUSTED,
      `message length ${rejectedLength} exceed maximum message size of ${maxLength}`,
      { rejectedLength, maxLength, ...context },
    )
  }
}

export interface WireStatus {
  code: Code
  message: string
}

/**
 * Maps anything a handler threw to the status sent on the wire.
 * A KatarefError keeps its code (an OK code on an error is turned into UNKNOWN); anything else is UNKNOWN.
 */
export function toStatus(err: unknown): WireStatus {
  if (err instanceof KatarefError) {
    return { code: err.code === Code.OK ? Code.UNKNOWN : err.code, message: err.message }
  }
  return { code: Code.UNKNOWN, message: errorMessage(err) }
}
