// What the Task service needs from a sandbox (one VM per pod and its agent). The real implementation
// (vm-runtime.ts) boots QEMU and talks to the guest agent; unit tests use a fake. Process addressing
// follows the agent: (containerId, execId) with execId '' = the container's init process.
import type { OciProcessJson, OciSpecJson } from './oci.ts'

export interface CreateContainerParams {
  containerId: string
  bundle: string
  /** config.json of the bundle. */
  spec: OciSpecJson
  /** Host directory holding the container's root filesystem (the rootfs mounts already applied). */
  rootfsDir: string
}

export interface SandboxRuntime {
  /**
   * Creates the container (the first call boots the sandbox: VM, agent, CreateSandbox) and its init
   * process, which does not run user code until startContainer. Returns the pid containerd sees
   * (Kata: the hypervisor's pid).
   */
  createContainer(p: CreateContainerParams): Promise<{ pid: number }>
  /** Lets the init process run (agent StartContainer). */
  startContainer(containerId: string): Promise<void>
  /** Starts an extra process (agent ExecProcess). */
  execProcess(containerId: string, execId: string, process: OciProcessJson): Promise<void>
  signalProcess(containerId: string, execId: string, signal: number, all: boolean): Promise<void>
  /** Resolves with the exit status (code, or 128 + signal) once the process has exited. */
  waitProcess(containerId: string, execId: string): Promise<number>
  /** Up to `len` bytes of output; an empty array is EOF. */
  readStdout(containerId: string, execId: string, len: number): Promise<Uint8Array>
  readStderr(containerId: string, execId: string, len: number): Promise<Uint8Array>
  writeStdin(containerId: string, execId: string, data: Uint8Array): Promise<number>
  closeStdin(containerId: string, execId: string): Promise<void>
  /** Removes the container and its processes from the sandbox (agent RemoveContainer). */
  removeContainer(containerId: string): Promise<void>
  /** Tears the sandbox down (DestroySandbox, VM stop). Idempotent. */
  shutdown(): Promise<void>
}
