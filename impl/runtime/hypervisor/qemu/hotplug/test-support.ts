// Shared set-up for the hotplug unit tests and the unplug bench: a connected QmpClient on a
// scripted FakeQmpPeer, a BlockHotplugContext, and throwaway source files.
import fs from 'node:fs'
import { afterAll } from 'vitest'
import os from 'node:os'
import path from 'node:path'
import { FakeQmpPeer } from '../qmp/fake-qmp-peer.ts'
import { QmpClient } from '../qmp/qmp-client.ts'
import type { QueryPciBus, QueryPciDevice } from './pci-slots.ts'
import { BlockFdsets } from './block-fdsets.ts'
import { PciBridgeSlots } from './pci-slots.ts'
import type { BlockHotplugContext } from './hotplug-context.ts'

export interface Harness {
  peer: FakeQmpPeer
  qmp: QmpClient
  ctx: BlockHotplugContext
  close(): void
}

export async function fakeHarness(opts: Partial<Omit<BlockHotplugContext, 'qmp'>> & { bridges?: number } = {}): Promise<Harness> {
  const peer = new FakeQmpPeer()
  const qmp = await QmpClient.connect(peer.clientSide, { fdSender: peer.fdSender })
  const { bridges, ...rest } = opts
  const ctx: BlockHotplugContext = { qmp, slots: new PciBridgeSlots(bridges ?? 1), fdsets: new BlockFdsets(), ...rest }
  return { peer, qmp, ctx, close: () => qmp.close() }
}

/** A temp dir removed again after the test file that made it (call at file or describe level). */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kataref-hotplug-'))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function tempFile(dir: string, name: string, bytes = 1 << 20): string {
  const p = path.join(dir, name)
  fs.writeFileSync(p, Buffer.alloc(bytes))
  return p
}

/** query-pci with `pci-bridge-<n>` at root slot 2+n holding `devices[n]`. */
export function queryPciWithBridges(devices: { slot: number; qdevId: string }[][]): QueryPciBus[] {
  const root: QueryPciDevice[] = [{ slot: 0, function: 0, qdev_id: '' }]
  devices.forEach((below, n) => {
    root.push({
      slot: 2 + n,
      function: 0,
      qdev_id: `pci-bridge-${n}`,
      pci_bridge: { devices: below.map((d) => ({ slot: d.slot, function: 0, qdev_id: d.qdevId })) },
    })
  })
  return [{ bus: 0, devices: root }]
}

/** Allocates fdset ids 0,1,2… like QEMU's add-fd. */
export function fdsetCounter(): () => { 'fdset-id': number; fd: number } {
  let next = 0
  return () => ({ 'fdset-id': next, fd: 100 + next++ })
}
