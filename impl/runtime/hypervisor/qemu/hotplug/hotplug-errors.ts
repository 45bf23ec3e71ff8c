// Errors of the QEMU device hot(un)plug layer. Messages keep upstream's texts; wrapping adds a
// context prefix the way anyhow's `{:#}` renders a chain (`context: cause`), and keeps the
// original as `cause` (so a QmpCommandError's `class`/`desc` stay reachable).
import { Code, KatarefError, errorMessage } from '../../../../types/errors.ts'
import { QmpCommandError } from '../qmp/qmp-errors.ts'

export class HotplugError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    const cause = options?.cause
    const qmp = findQmpError(cause)
    super(message, qmp ? qmp.code : Code.INTERNAL, qmp ? { qmpClass: qmp.errorClass, qmpDesc: qmp.desc, ...context } : context, options)
  }

  /** `<what>: <cause message>`, cause kept. */
  static wrap(what: string, cause: unknown, context: Record<string, unknown> = {}): HotplugError {
    return new HotplugError(`${what}: ${errorMessage(cause)}`, context, { cause })
  }
}

/** The QmpCommandError somewhere down the cause chain, if any. */
export function findQmpError(e: unknown): QmpCommandError | undefined {
  for (let cur = e, depth = 0; cur instanceof Error && depth < 16; cur = cur.cause, depth++) {
    if (cur instanceof QmpCommandError) return cur
  }
  return undefined
}
