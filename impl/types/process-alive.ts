/** Whether a process with this pid exists (signal 0 probes without sending anything). */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
