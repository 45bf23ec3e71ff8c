// One small base class for every error kataref raises on purpose.
// Each layer wraps with a message naming what it touched and keeps the original as `cause`;
// `code` is the gRPC status code the error maps to when it crosses a ttrpc boundary.

/** gRPC status codes, numbered as on the wire (protocols.md §1.6). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const
export type Code = (typeof Code)[keyof typeof Code]

export class KatarefError extends Error {
  readonly code: Code
  /** Structured context (paths, ids, indexes) for logs and reports. */
  readonly context: Record<string, unknown>

  constructor(message: string, code: Code = Code.UNKNOWN, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.context = context
  }
}

/** Input that failed validation: names the input and what was wrong with it. */
export class InvalidInputError extends KatarefError {
  constructor(readonly input: string, readonly problem: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`invalid ${input}: ${problem}`, Code.INVALID_ARGUMENT, { input, ...context }, options)
  }
}

/** A deadline passed; `waitedMs` says how long we waited. */
export class DeadlineError extends KatarefError {
  constructor(what: string, readonly waitedMs: number, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`${what}: deadline of ${waitedMs} ms exceeded`, Code.DEADLINE_EXCEEDED, context, options)
  }
}

/** An external tool (mkfs.erofs, qemu-img, …) is missing or failed. */
export class ToolError extends KatarefError {
  constructor(readonly tool: string, problem: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(`${tool}: ${problem}`, Code.INTERNAL, { tool, ...context }, options)
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
