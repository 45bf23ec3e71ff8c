// The scenario `test` with host-built disks attached to the file's guest (see guest-disks.ts).
import type { GuestOptions } from './guest.ts'
import type { LayerDisk } from './guest-disks.ts'
import { test as scenarioTest } from './scenario.ts'
/**
 * The scenario `test` with a file-scoped `disks` fixture (built before the guest boots, removed after
 * the file) attached to the file's guest, plus extra kernel command line words.
 */
export function testWithDisks<D extends Record<string, LayerDisk>>(build: () => Promise<D>, guest: Omit<GuestOptions, 'disks'> = {}) {
  return scenarioTest.extend<{ disks: D; guestOptions: GuestOptions }>({
    disks: [
      async ({}, use) => {
        const built = await build()
        try {
          await use(built)
        } finally {
          for (const d of Object.values(built) as LayerDisk[]) await d.remove()
        }
      },
      { scope: 'file' },
    ],
    guestOptions: [async ({ disks }, use) => use({ ...guest, disks: (Object.values(disks) as LayerDisk[]).map((d) => d.disk) }), { scope: 'file' }],
  })
}
