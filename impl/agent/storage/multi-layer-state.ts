// Per-sandbox bookkeeping of multi-layer EROFS groups and their verity devices
// (`container_verity_devices`, `remove_container_resources`, §11) with kataref's teardown:
// RemoveContainer unmounts, then destroys that container's verity devices in reverse and removes
// their nodes; DestroySandbox removes whatever is left — including sandbox-level groups (G5 fixed).
import { cleanupDmverityDevices, errorChain, formatErrorChain, listVerityDevices, type DmVerityContext } from '../../dmverity/index.ts'
import { nullLogger, type Logger } from '../../types/logger.ts'
import { handleMultiLayerErofsGroup, type MultiLayerErofsRecord, type MultiLayerErofsResult } from './multi-layer-erofs.ts'
import { isMultiLayerStorage } from './multi-layer-options.ts'
import { systemClock, type StorageContext, type StorageLike } from './storage-context.ts'

export type StorageEnv = Omit<StorageContext, 'cid'>

export interface TeardownReport {
  unmounted: string[]
  destroyedVerityDevices: string[]
  removedDirs: string[]
  /** Logged, not thrown: `<what>: <error chain>`. */
  failures: string[]
}

const emptyReport = (): TeardownReport => ({ unmounted: [], destroyedVerityDevices: [], removedDirs: [], failures: [] })

export class MultiLayerErofsState {
  /** Live groups, creation order. */
  private readonly records: MultiLayerErofsRecord[] = []
  /** `Sandbox.container_verity_devices`: cid → node paths, layer order (extended, never replaced). */
  readonly containerVerityDevices = new Map<string, string[]>()
  /** kataref addition (G5): verity devices of sandbox-level groups, destroyed by DestroySandbox. */
  readonly sandboxVerityDevices: string[] = []
  private readonly log: Logger

  constructor(private readonly env: StorageEnv) {
    this.log = (env.logger ?? nullLogger).child({ component: 'multi-layer-erofs' })
  }

  private dmCtx(): DmVerityContext {
    return { dm: this.env.dm, nodes: this.env.nodes, logger: this.log, sleep: (this.env.clock ?? systemClock).sleep }
  }

  /**
   * The multi-layer part of `add_storages` (§3.1): if any storage of the request is multi-layer,
   * mount the group and record it. Returns undefined when there is none. The caller skips every
   * storage whose mount point is in `processedMountPoints`, and appends `mounts` to the
   * container's (or sandbox's) mount list.
   */
  async addStorages(storages: readonly StorageLike[], cid?: string, env: StorageEnv = this.env): Promise<MultiLayerErofsResult | undefined> {
    if (!storages.some(isMultiLayerStorage)) return undefined
    // `env`: this call's seams (e.g. with failpoints); teardown always uses the state's own env.
    const result = await handleMultiLayerErofsGroup(storages, { ...env, ...(cid !== undefined ? { cid } : {}) })
    this.records.push(result.record)
    if (result.verityDevices.length) {
      if (cid !== undefined) {
        const list = this.containerVerityDevices.get(cid) ?? []
        list.push(...result.verityDevices)
        this.containerVerityDevices.set(cid, list)
      } else {
        this.sandboxVerityDevices.push(...result.verityDevices)
      }
    }
    return result
  }

  /** Groups currently mounted for `cid` (undefined: sandbox-level). */
  groups(cid?: string): readonly MultiLayerErofsRecord[] {
    return this.records.filter((r) => r.cid === cid)
  }

  /** RemoveContainer (and failed StartContainer): unmount, destroy verity devices last-first, remove dirs. */
  async removeContainer(cid: string): Promise<TeardownReport> {
    const report = emptyReport()
    const mine = this.records.filter((r) => r.cid === cid)
    await this.unmountAll(mine, report)
    const verity = this.containerVerityDevices.get(cid) ?? []
    this.containerVerityDevices.delete(cid)
    await this.destroyVerity(verity, report)
    await this.removeDirs(mine, report)
    this.forget(mine)
    this.log.info({ cid, ...summary(report) }, 'multi-layer erofs container resources removed')
    return report
  }

  /**
   * DestroySandbox: tear down every remaining group (containers first, newest first, then
   * sandbox-level), then — with `sweep` (default on) — any `kata-verity-*` device still known to DM.
   */
  async destroySandbox(opts: { sweep?: boolean } = {}): Promise<TeardownReport> {
    const report = emptyReport()
    for (const cid of [...new Set(this.records.filter((r) => r.cid !== undefined).map((r) => r.cid!))].reverse()) {
      merge(report, await this.removeContainer(cid))
    }
    for (const [cid, list] of [...this.containerVerityDevices].reverse()) {
      this.containerVerityDevices.delete(cid)
      await this.destroyVerity(list, report)
    }
    const sandboxGroups = this.records.filter((r) => r.cid === undefined).reverse()
    await this.unmountAll(sandboxGroups, report)
    await this.destroyVerity(this.sandboxVerityDevices.splice(0), report)
    await this.removeDirs(sandboxGroups, report)
    this.forget(sandboxGroups)
    if ((opts.sweep ?? true) && this.env.devmapper) {
      try {
        await this.destroyVerity(await listVerityDevices(this.dmCtx()), report)
      } catch (e) {
        report.failures.push(`list dm devices: ${formatErrorChain(e)}`)
      }
    }
    this.log.info(summary(report), 'multi-layer erofs sandbox resources removed')
    return report
  }

  private async unmountAll(records: readonly MultiLayerErofsRecord[], report: TeardownReport): Promise<void> {
    for (const r of [...records].reverse()) {
      for (const m of r.mounts) {
        try {
          await this.env.mounter.umount(m)
          report.unmounted.push(m)
        } catch (e) {
          report.failures.push(`umount ${m}: ${formatErrorChain(e)}`)
          this.log.warn({ mountPoint: m, err: errorChain(e) }, 'umount failed')
        }
      }
    }
  }

  private async destroyVerity(paths: readonly string[], report: TeardownReport): Promise<void> {
    if (paths.length === 0 || !this.env.devmapper) return
    const failures = await cleanupDmverityDevices(this.dmCtx(), paths)
    const failed = new Set(failures.map((f) => f.path))
    report.destroyedVerityDevices.push(...[...paths].reverse().filter((p) => !failed.has(p)))
    for (const f of failures) report.failures.push(`destroy ${f.path}: ${formatErrorChain(f.error)}`)
  }

  private async removeDirs(records: readonly MultiLayerErofsRecord[], report: TeardownReport): Promise<void> {
    for (const r of [...records].reverse()) {
      // Only once nothing of the group is mounted any more (never rm -rf through a live overlay).
      const stillMounted = r.mounts.some((m) => report.failures.some((f) => f.startsWith(`umount ${m}:`)))
      if (!stillMounted && this.env.nodes.removeTree) {
        for (const t of r.scratchTrees) {
          try {
            await this.env.nodes.removeTree(t)
          } catch (e) {
            report.failures.push(`rm -rf ${t}: ${formatErrorChain(e)}`)
          }
        }
      }
      for (const d of [...r.createdDirs].reverse()) {
        try {
          if (await this.env.nodes.rmdirIfEmpty(d)) report.removedDirs.push(d)
        } catch (e) {
          report.failures.push(`rmdir ${d}: ${formatErrorChain(e)}`)
        }
      }
    }
  }

  private forget(records: readonly MultiLayerErofsRecord[]): void {
    for (const r of records) {
      const i = this.records.indexOf(r)
      if (i >= 0) this.records.splice(i, 1)
    }
  }
}

function merge(into: TeardownReport, from: TeardownReport): void {
  into.unmounted.push(...from.unmounted)
  into.destroyedVerityDevices.push(...from.destroyedVerityDevices)
  into.removedDirs.push(...from.removedDirs)
  into.failures.push(...from.failures)
}

function summary(r: TeardownReport) {
  return { unmounted: r.unmounted.length, destroyed: r.destroyedVerityDevices.length, failures: r.failures }
}
