// Partition node wait (§4.4): check at once, then poll every 50 ms until the deadline
// (20 polls for the 1000 ms default); shared by the sysfs resolver and the test fakes.
import { PartitionWaitError } from './multi-layer-errors.ts'
import type { Clock, Deadline } from './storage-context.ts'

export const PARTITION_POLL_MS = 50

export async function waitForPath(exists: (p: string) => Promise<boolean>, path: string, deadline: Deadline, clock: Clock, pollMs = PARTITION_POLL_MS): Promise<void> {
  if (await exists(path)) return
  const polls = Math.max(0, Math.ceil((deadline.at - clock.now()) / pollMs))
  for (let i = 0; i < polls; i++) {
    await clock.sleep(pollMs)
    if (await exists(path)) return
  }
  throw new PartitionWaitError(path, deadline.budgetMs)
}
