// cgroup v2 value conversions (spec §2, "Related cgroup v2 conversions").
import { KatarefError, Code } from '../../types/errors.ts'

/** OCI cpu shares → `cpu.weight`: 0 stays 0, else 1 + ((shares - 2) * 9999) / 262142 (integer division). */
export function sharesToWeight(shares: bigint | number): bigint {
  const s = BigInt(shares)
  if (s === 0n) return 0n
  return 1n + ((s - 2n) * 9999n) / 262142n
}

/** OCI memory limit + memory+swap → v2 `memory.swap.max` (-1 = "max", 0 = unset: passed through as is). */
export function swapV2(memory: bigint, swap: bigint): bigint {
  if (memory === -1n && swap === 0n) return -1n
  if (swap === -1n || swap === 0n) return swap
  if (memory === 0n || memory === -1n) throw new KatarefError('unable to set swap limit without memory limit', Code.INVALID_ARGUMENT, { memory: String(memory), swap: String(swap) })
  if (memory < 0n) throw new KatarefError(`invalid memory value: ${memory}`, Code.INVALID_ARGUMENT, { memory: String(memory) })
  if (swap < memory) throw new KatarefError(`memory+swap limit (${swap}) should be greater than memory limit (${memory})`, Code.INVALID_ARGUMENT)
  return swap - memory
}
