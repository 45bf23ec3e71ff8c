// bench/unplug: time from DEVICE_DELETED arriving (emitted by the scripted QMP peer) to `blockdev-del`
// reaching the peer, for our event-driven unplug. Upstream's loop polls `query-version` every 100 ms,
// so it would show up to ~100 ms here. Prints, never asserts.
// Run: npm run bench -- unplug [iterations]   (or: node --import tsx bench/unplug/unplug.bench.ts)
import { hotunplugBlockDevice } from '../../impl/runtime/hypervisor/qemu/hotplug/block-unplug.ts'
import { fakeHarness } from '../../impl/runtime/hypervisor/qemu/hotplug/test-support.ts'
import { median, printTable } from '../report.ts'

function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}

async function latencies(iterations: number, eventDelayMs: number): Promise<number[]> {
  const h = await fakeHarness()
  const lat: number[] = []
  try {
    for (let i = 0; i < iterations; i++) {
      const id = `drive-${i}`
      h.peer
        .expect({
          execute: 'device_del',
          events: [
            { event: { event: 'DEVICE_DELETED', data: { path: `/machine/peripheral/${id}/virtio-backend` } } },
            { event: { event: 'DEVICE_DELETED', data: { device: id, path: `/machine/peripheral/${id}` } }, delayMs: eventDelayMs },
          ],
        })
        .expect({ execute: 'blockdev-del' })
      await hotunplugBlockDevice(h.ctx, 'virtio-scsi', i)
      const deletedAt = h.peer.emitted.at(-1)!.at
      const delAt = h.peer.received.at(-1)!.at
      lat.push(delAt - deletedAt)
      h.qmp.drainEvents()
    }
    h.peer.assertDone()
  } finally {
    h.close()
  }
  return lat
}

export async function main(iterations = 200): Promise<void> {
  const rows: [string, string, string?][] = []
  for (const delay of [0, 2]) {
    const lat = await latencies(iterations, delay)
    rows.push([
      `DEVICE_DELETED → blockdev-del, event ${delay} ms after the device_del reply`,
      `${median(lat).toFixed(3)} ms`,
      `median of ${iterations}; p95 ${quantile(lat, 0.95).toFixed(3)} ms, max ${Math.max(...lat).toFixed(3)} ms; upstream polls every 100 ms`,
    ])
  }
  printTable('unplug', rows)
}

if (import.meta.url === `file://${process.argv[1]}`) await main(Number(process.argv[2] ?? 200))
