// GetGuestDetails: what the runtime learns about the guest after CreateSandbox.
import { access, readFile } from 'node:fs/promises'
import { release } from 'node:os'
import { AGENT_VERSION } from './version.ts'

export interface GuestDetails {
  memBlockSizeBytes: bigint
  supportMemHotplugProbe: boolean
  agentDetails: {
    version: string
    initDaemon: boolean
    deviceHandlers: string[]
    storageHandlers: string[]
    supportsSeccomp: boolean
    extraFeatures: string[]
  }
}

const MEM_BLOCK_SIZE_PATH = '/sys/devices/system/memory/block_size_bytes'
const PROBE_PATH = '/sys/devices/system/memory/probe'

/**
 * `extraFeatures` carries `kernel_version=<uname -r>`: upstream's AgentDetails has no kernel field,
 * and an extra entry in this free-form list stays wire compatible.
 */
export async function getGuestDetails(req: { memBlockSize: boolean; memHotplugProbe: boolean }, storageHandlers: string[]): Promise<GuestDetails> {
  let memBlockSizeBytes = 0n
  if (req.memBlockSize) {
    // The file holds hex without a 0x prefix; absent when memory hotplug is not built in.
    const raw = await readFile(MEM_BLOCK_SIZE_PATH, 'utf8').catch(() => undefined)
    if (raw !== undefined && /^[0-9a-fA-F]+\s*$/.test(raw)) memBlockSizeBytes = BigInt('0x' + raw.trim())
  }
  let supportMemHotplugProbe = false
  if (req.memHotplugProbe) {
    // The probe file is write-only; its presence is what matters.
    supportMemHotplugProbe = await access(PROBE_PATH).then(() => true, () => false)
  }
  return {
    memBlockSizeBytes,
    supportMemHotplugProbe,
    agentDetails: {
      version: AGENT_VERSION,
      initDaemon: process.pid === 1,
      deviceHandlers: [],
      storageHandlers,
      supportsSeccomp: false,
      extraFeatures: [`kernel_version=${release()}`],
    },
  }
}
