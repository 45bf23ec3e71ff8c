// The seam between DM logic and the kernel: a control node that takes raw dm_ioctl buffers.
// Real: KoffiDmBackend (ioctl(2) on /dev/mapper/control). Tests: FakeDmBackend (a simulated DM core).
// Working at the byte level means the fake sees exactly what the kernel would (§16 B18, B19).

export const DM_CONTROL_PATH = '/dev/mapper/control'

/** An open /dev/mapper/control. */
export interface DmControl {
  /** Issue one ioctl; `buf` is read and written in place. Resolves with 0, or the errno on failure. */
  ioctl(request: number, buf: Buffer): Promise<number>
  close(): Promise<void>
}

export interface DmBackend {
  /** Short name for logs ("koffi", "fake"). */
  readonly kind: string
  /** Open the control node (once per create/destroy call, §9.1). Rejects if it is missing. */
  openControl(): Promise<DmControl>
}
