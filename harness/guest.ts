// The booted guest a scenario receives from the `guest` fixture.
// Booting (images + QemuVm + debug console) is implemented in boot-guest.ts; the harness only codes
// against this interface, so its own tests can hand scenarios a fake guest.
import type { KataAgent } from '../impl/runtime/agent/kata-agent.ts'
import type { QemuVm } from '../impl/runtime/hypervisor/qemu/qemu.ts'
import type { QemuDisk } from '../impl/runtime/hypervisor/qemu/cmdline.ts'
import type { Logger } from '../impl/types/logger.ts'

export interface Guest {
  id: string
  kernelVersion: string
  /** Wall time from launching QEMU until the agent and debug console answered. */
  bootMs: number
  agentSocketPath: string
  qmpSocketPath: string
  debugSocketPath: string
  consoleLogPath: string
  runDir: string
  /** The independent debug shell in the guest (witness), see harness/guest-contract.md. */
  debug: { run(cmd: string, opts?: { timeoutMs?: number }): Promise<{ stdout: string; exitCode: number }> }
  /** Last `lines` lines of the serial console (the agent logs JSON lines there). */
  consoleTail(lines: number): Promise<string>
  stop(): Promise<void>
}

/** What the real bootGuest hands to scenarios: the Guest plus its connected agent client and the VM. */
export interface BootedGuest extends Guest {
  agent: KataAgent
  vm: QemuVm
}

/** What a scenario file may ask of its guest (the `guestOptions` fixture, file-scoped). */
export interface GuestOptions {
  /** Extra virtio-blk disks after the rootfs (/dev/vdb, …), built on the host before boot. */
  disks?: QemuDisk[]
  /** Extra kernel command line words (e.g. `kataref.use_devmapper=0`). */
  kernelParams?: string[]
  /** Hot-plug bridges `pci-bridge-0..n-1` on pcie.0 (runtime-rs `default_bridges`); default none. */
  pciBridges?: number
}

export interface BootGuestOptions extends GuestOptions {
  /** Leave the VM running after the scenario (`kataref run --keep`); stop() then only detaches. */
  keep?: boolean
  log?: Logger
  /** Directory under which the guest's runDir is created; the runner removes it after the run. */
  runRoot?: string
  signal?: AbortSignal
}

/**
 * Boots a guest. A failed boot should throw a KatarefError whose `context.consoleLogPath` names the
 * console log; the fixture then attaches its tail to the failing test.
 */
export type BootGuest<G extends Guest = Guest> = (opts: BootGuestOptions) => Promise<G>
