// State a QEMU driver keeps for block hot(un)plug, passed in (never module globals).
import type { Logger } from '../../../../types/logger.ts'
import type { QmpClient } from '../qmp/qmp-client.ts'
import type { BlockFdsets } from './block-fdsets.ts'
import type { CcwSubchannel } from './ccw-subchannel.ts'
import type { PciAddrFormat, PciBridgeSlots } from './pci-slots.ts'

export interface BlockHotplugContext {
  qmp: QmpClient
  slots: PciBridgeSlots
  fdsets: BlockFdsets
  /** s390x only; absent elsewhere. */
  ccw?: CcwSubchannel
  logger?: Logger
  /** Default `hex` (gap §12.1 fixed); `upstream-decimal` reproduces runtime-rs. */
  pciAddrFormat?: PciAddrFormat
  /** Default true (gap §12.2 fixed); false keeps the slot recorded after unplug as runtime-rs does. */
  releaseSlotOnUnplug?: boolean
  /** DEVICE_DELETED wait (default 10 000 ms, spec §5). */
  deviceDeletedTimeoutMs?: number
}
