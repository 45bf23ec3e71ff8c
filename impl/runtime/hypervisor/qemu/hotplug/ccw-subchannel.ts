// s390x CCW subchannel bookkeeping (spec §2): device id → slot, slots from a counter that
// never goes back. devno `fe.<subch hex>.<slot 4 hex>`, guest address `0.<subch hex>.<slot 4 hex>`.
import { Code, KatarefError } from '../../../../types/errors.ts'

export class CcwSubchannelError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super(message, Code.FAILED_PRECONDITION, context)
  }
}

export class CcwSubchannel {
  private readonly devices = new Map<string, number>()
  private nextSlot = 0

  constructor(readonly subchannel = 0) {}

  /** Reserve the next slot for `deviceId`. Duplicate id → error. */
  addDevice(deviceId: string): number {
    if (this.devices.has(deviceId)) throw new CcwSubchannelError(`device ${deviceId} already exists in CCW subchannel ${this.subchannel}`, { deviceId })
    const slot = this.nextSlot++
    this.devices.set(deviceId, slot)
    return slot
  }

  /** Free `deviceId`'s slot (the counter is not rewound). Unknown id → error. */
  removeDevice(deviceId: string): void {
    if (!this.devices.delete(deviceId)) throw new CcwSubchannelError(`device ${deviceId} not found in CCW subchannel ${this.subchannel}`, { deviceId })
  }

  has(deviceId: string): boolean {
    return this.devices.has(deviceId)
  }

  slotOf(deviceId: string): number | undefined {
    return this.devices.get(deviceId)
  }

  /** QEMU `devno` for `slot`, e.g. `fe.0.0005`. */
  devno(slot: number): string {
    return `fe.${this.subchannel.toString(16)}.${slot.toString(16).padStart(4, '0')}`
  }

  /** Guest CCW address for `slot`, e.g. `0.0.0005`. */
  guestAddress(slot: number): string {
    return `0.${this.subchannel.toString(16)}.${slot.toString(16).padStart(4, '0')}`
  }
}
