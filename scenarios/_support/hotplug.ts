// Shared by the hotplug-* scenarios: a guest with one hot-plug bridge (`pci-bridge-0` on pcie.0 at
// slot 2, as runtime-rs's cmdline generator writes it), the runtime's QMP client on the guest's
// public QMP socket with every command sent and event received recorded in order, raw disk files
// with a recognisable first sector, and witness helpers reading the guest's sysfs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { test as base, type RealGuest } from '../../harness/scenario.ts'
import { ENV } from '../../harness/env.ts'
import { onExitCleanup } from '../../impl/runtime/hypervisor/qemu/cleanup.ts'
import { connectQmpSocket } from '../../impl/runtime/hypervisor/qemu/qmp/qmp-socket.ts'
import type { QmpClient } from '../../impl/runtime/hypervisor/qemu/qmp/qmp-client.ts'
import { initHotplugContext } from '../../impl/runtime/hypervisor/qemu/hotplug/hotplug-dispatcher.ts'
import type { BlockHotplugContext } from '../../impl/runtime/hypervisor/qemu/hotplug/hotplug-context.ts'
import type { BlockHotplugRequest } from '../../impl/runtime/hypervisor/qemu/hotplug/block-hotplug.ts'

/** The scenario `test` whose guest has one hot-plug bridge. */
export const test = base.extend({ guestOptions: [async ({}, use) => use({ pciBridges: 1 }), { scope: 'file' }] })

export type QmpRecord = { dir: 'send'; command: string; args?: Record<string, unknown> } | { dir: 'event'; event: string; data?: Record<string, unknown> }

export interface HotplugSession {
  qmp: QmpClient
  ctx: BlockHotplugContext
  /** Commands sent and events received by the client, in the order they happened. */
  record: QmpRecord[]
  dir: string
  /** A 1 MiB raw file whose first sector starts with `marker`. */
  disk(name: string, marker: string): string
  close(): void
}

/** Connect the runtime's QMP client to the guest's public QMP socket and build a hotplug context. */
export async function openHotplug(guest: RealGuest, opts: Partial<Pick<BlockHotplugContext, 'pciAddrFormat' | 'releaseSlotOnUnplug' | 'deviceDeletedTimeoutMs'>> = {}): Promise<HotplugSession> {
  const record: QmpRecord[] = []
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        const o = JSON.parse(line) as { msg?: string; command?: string; args?: Record<string, unknown>; event?: string; data?: Record<string, unknown> }
        if (o.msg === 'QMP send' && o.command) record.push({ dir: 'send', command: o.command, ...(o.args ? { args: o.args } : {}) })
        else if (o.msg === 'QMP event' && o.event) record.push({ dir: 'event', event: o.event, ...(o.data ? { data: o.data } : {}) })
      },
    },
  )
  const qmp = await connectQmpSocket(guest.qmpSocketPath, { logger, readyTimeoutMs: 20_000 })
  const ctx = await initHotplugContext(qmp, { defaultBridges: 1, logger, ...opts })
  // Under the run's temp root (removed by the runner) when there is one; also removed on exit/signals.
  const dir = mkdtempSync(join(process.env[ENV.runRoot] ?? tmpdir(), 'kataref-hp-'))
  const unregister = onExitCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return {
    qmp,
    ctx,
    record,
    dir,
    disk(name, marker) {
      const buf = Buffer.alloc(1 << 20)
      buf.write(marker, 0, 'latin1')
      const p = join(dir, name)
      writeFileSync(p, buf)
      return p
    },
    close() {
      qmp.close()
      unregister()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The request these scenarios hot-plug: disk `index` as virtio-blk-pci, aio threads, no O_DIRECT, read-write. */
export function virtioBlk(index: number, pathOnHost: string): BlockHotplugRequest {
  return { driver: 'virtio-blk-pci', index, pathOnHost, aio: 'threads', direct: false, readOnly: false, noDrop: false }
}

/** Guest sysfs dir of the PCI function at `pciPath` (`02/0a` → bridge 00:02.0, then slot 0x0a below it). */
export function guestPciGlob(pciPath: string): string {
  const [bridge, slot] = pciPath.split('/')
  return `/sys/bus/pci/devices/0000:00:${bridge}.0/0000:*:${slot}.0`
}

/**
 * Witness: polls in the guest until the PCI function at `pciPath` has a virtio block disk; returns
 * its name (`vdb`) and the first bytes read from `/dev/<name>`.
 */
export async function waitGuestDisk(guest: RealGuest, pciPath: string, markerLen: number, timeoutS = 60): Promise<{ name: string; head: string; pciDir: string }> {
  const g = guestPciGlob(pciPath)
  const script = `i=0; while [ $i -lt ${timeoutS * 10} ]; do for b in ${g}/virtio*/block/*; do if [ -e "$b" ]; then n=\${b##*/}; d=\${b%/virtio*}; echo "$n"; echo "$d"; head -c ${markerLen} /dev/$n; echo; exit 0; fi; done; sleep 0.1; i=$((i+1)); done; echo none; exit 1`
  const r = await guest.debug.run(script, { timeoutMs: (timeoutS + 30) * 1000 })
  if (r.exitCode !== 0) throw new Error(`guest has no block disk under ${g} after ${timeoutS} s: ${r.stdout}`)
  const [name, pciDir, head] = r.stdout.split('\n')
  return { name: name!, pciDir: pciDir!, head: head ?? '' }
}

/** Witness: polls until the guest no longer has `/sys/block/<name>` nor a PCI function at `pciPath`. */
export async function waitGuestDiskGone(guest: RealGuest, name: string, pciPath: string, timeoutS = 60): Promise<void> {
  const g = guestPciGlob(pciPath)
  const script = `i=0; while [ $i -lt ${timeoutS * 10} ]; do if [ ! -e /sys/block/${name} ] && ! ls -d ${g} >/dev/null 2>&1; then exit 0; fi; sleep 0.1; i=$((i+1)); done; ls -d /sys/block/${name} ${g}; exit 1`
  const r = await guest.debug.run(script, { timeoutMs: (timeoutS + 30) * 1000 })
  if (r.exitCode !== 0) throw new Error(`guest still has ${name} / ${g} after ${timeoutS} s: ${r.stdout}`)
}

/** Names of the guest's virtio disks (`vda vdb …`). */
export async function guestDisks(guest: RealGuest): Promise<string[]> {
  const r = await guest.debug.run('ls /sys/block | grep ^vd || true')
  return r.stdout.split(/\s+/).filter(Boolean).sort()
}

export async function namedNodes(qmp: QmpClient): Promise<string[]> {
  const nodes = await qmp.execute<{ 'node-name': string }[]>('query-named-block-nodes')
  return nodes.map((n) => n['node-name'])
}
