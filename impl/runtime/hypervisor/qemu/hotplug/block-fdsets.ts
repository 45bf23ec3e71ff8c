// Which QMP fdsets belong to which block node (spec §2/§3, runtime-rs HEAD).
// Opaque of every fd we add: `kata-block:<node-name>:<label>`; the map can be rebuilt from
// `query-fdsets` after (re)connecting.
import { errorMessage } from '../../../../types/errors.ts'
import { nullLogger, type Logger } from '../../../../types/logger.ts'
import type { QmpClient } from '../qmp/qmp-client.ts'

const OPAQUE_PREFIX = 'kata-block:'

export function blockFdOpaque(nodeName: string, label: string): string {
  return `${OPAQUE_PREFIX}${nodeName}:${label}`
}

/** Node name from an opaque written by `blockFdOpaque`; undefined for foreign opaques. */
export function nodeNameOfOpaque(opaque: string): string | undefined {
  if (!opaque.startsWith(OPAQUE_PREFIX)) return undefined
  const rest = opaque.slice(OPAQUE_PREFIX.length)
  const colon = rest.indexOf(':')
  if (colon <= 0) return undefined
  return rest.slice(0, colon)
}

export interface QueryFdsetsEntry {
  'fdset-id': number
  fds: { fd: number; opaque?: string }[]
}

export class BlockFdsets {
  private readonly byNode = new Map<string, number[]>()

  has(nodeName: string): boolean {
    return (this.byNode.get(nodeName)?.length ?? 0) > 0
  }

  get(nodeName: string): number[] {
    return [...(this.byNode.get(nodeName) ?? [])]
  }

  add(nodeName: string, fdsetId: number): void {
    const l = this.byNode.get(nodeName) ?? []
    if (!l.includes(fdsetId)) l.push(fdsetId)
    this.byNode.set(nodeName, l)
  }

  /** Forget these ids for the node (only the given ones). */
  forget(nodeName: string, fdsetIds: readonly number[]): void {
    const left = (this.byNode.get(nodeName) ?? []).filter((id) => !fdsetIds.includes(id))
    if (left.length > 0) this.byNode.set(nodeName, left)
    else this.byNode.delete(nodeName)
  }

  nodes(): string[] {
    return [...this.byNode.keys()]
  }

  /** Replace the map with what `query-fdsets` reports (spec §1, HEAD). */
  rebuild(entries: readonly QueryFdsetsEntry[]): void {
    this.byNode.clear()
    for (const e of entries) {
      for (const fd of e.fds) {
        const node = fd.opaque !== undefined ? nodeNameOfOpaque(fd.opaque) : undefined
        if (node) this.add(node, e['fdset-id'])
      }
    }
  }

  /** `query-fdsets` then rebuild. */
  async refresh(qmp: QmpClient): Promise<void> {
    this.rebuild(await qmp.execute<QueryFdsetsEntry[]>('query-fdsets'))
  }

  /**
   * `remove-fd {fdset-id}` for each of the node's fdsets; failures are warned and those ids kept
   * (spec §5 step 4). Returns the ids that could not be removed.
   */
  async removeAll(qmp: QmpClient, nodeName: string, logger: Logger = nullLogger): Promise<number[]> {
    const failed: number[] = []
    for (const id of this.get(nodeName)) {
      try {
        await qmp.execute('remove-fd', { 'fdset-id': id })
        this.forget(nodeName, [id])
      } catch (e) {
        logger.warn({ nodeName, fdsetId: id, err: errorMessage(e) }, 'remove-fd failed; fdset id kept')
        failed.push(id)
      }
    }
    return failed
  }
}
