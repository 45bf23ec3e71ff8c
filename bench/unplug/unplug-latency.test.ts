// Bench: time from DEVICE_DELETED arriving (emitted by the scripted peer) to `blockdev-del`
// reaching the peer, for the event-driven unplug. Prints, does not assert (upstream's loop
// polls every 100 ms, so it would show up to ~100 ms here).
import { describe, it } from 'vitest'
import { hotunplugBlockDevice } from '../../impl/runtime/hypervisor/qemu/hotplug/block-unplug.ts'
import { fakeHarness } from '../../impl/runtime/hypervisor/qemu/hotplug/test-support.ts'

const ITERATIONS = 200

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number): string => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(3)
  return `n=${s.length} min=${q(0)} p50=${q(0.5)} p95=${q(0.95)} p99=${q(0.99)} max=${q(1 - 1e-9)} ms`
}

describe('bench: DEVICE_DELETED → blockdev-del', () => {
  for (const eventDelayMs of [0, 2]) {
    it(`event ${eventDelayMs} ms after the device_del reply, with a virtio-backend event first`, async () => {
      const h = await fakeHarness()
      const lat: number[] = []
      try {
        for (let i = 0; i < ITERATIONS; i++) {
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
      console.log(`[bench unplug] event delay ${eventDelayMs} ms: DEVICE_DELETED→blockdev-del ${stats(lat)}`)
    })
  }
})
