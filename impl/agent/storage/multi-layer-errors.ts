// Typed errors of the multi-layer EROFS handler: which layer (if any) and which step failed.
import { Code, KatarefError } from '../../types/errors.ts'

/** Steps named in issue 4, plus the group-level ones around them. */
export type MultiLayerStep =
  | 'classify' | 'prepare' | 'upper-mount' | 'mkdir-directive'
  | 'resolve' | 'gpt' | 'partition-wait' | 'verity-disabled' | 'verity-parse'
  | 'control' | 'validate' | 'stale-remove' | 'create' | 'table-load' | 'resume' | 'status' | 'mknod'
  | 'mkdir' | 'mount' | 'overlay'

export class MultiLayerErofsError extends KatarefError {
  constructor(message: string, readonly step: MultiLayerStep, readonly layerIndex: number | undefined,
    context: Record<string, unknown> = {}, options?: ErrorOptions & { code?: Code }) {
    super(message, options?.code ?? codeFor(step), { step, layerIndex, ...context }, options)
  }
}

function codeFor(step: MultiLayerStep): Code {
  switch (step) {
    case 'classify': case 'gpt': case 'verity-parse': case 'validate': return Code.INVALID_ARGUMENT
    case 'partition-wait': case 'resolve': return Code.DEADLINE_EXCEEDED
    case 'verity-disabled': return Code.UNIMPLEMENTED
    default: return Code.INTERNAL
  }
}

/** The partition node did not show up in time (§4.4, B35). */
export class PartitionWaitError extends KatarefError {
  constructor(readonly path: string, readonly waitedMs: number) {
    super(`partition device ${path} did not appear within ${waitedMs} ms`, Code.DEADLINE_EXCEEDED, { path, waitedMs })
  }
}
