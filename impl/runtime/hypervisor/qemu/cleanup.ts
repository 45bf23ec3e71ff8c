// Last-chance cleanup: synchronous hooks run on process exit and on SIGINT/SIGTERM/SIGHUP, so an
// interrupted run leaves no qemu process, socket or temp folder. Signal handlers are installed
// only while at least one hook is registered; when kataref's handler is the only listener the
// signal is re-raised after cleanup, so the process still dies the way the user asked.
const hooks = new Set<() => void>()
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
type Sig = (typeof SIGNALS)[number]

function runAll(): void {
  for (const fn of [...hooks]) {
    hooks.delete(fn)
    try {
      fn()
    } catch {
      /* cleanup is best effort */
    }
  }
}

const signalHandlers = new Map<Sig, () => void>()

function onSignal(sig: Sig): void {
  runAll()
  uninstall()
  // Others (a test runner, the CLI) may handle the signal themselves; if nobody does, die by it.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
}

function install(): void {
  if (signalHandlers.size > 0) return
  process.on('exit', runAll)
  for (const sig of SIGNALS) {
    const h = (): void => onSignal(sig)
    signalHandlers.set(sig, h)
    process.on(sig, h)
  }
}

function uninstall(): void {
  process.off('exit', runAll)
  for (const [sig, h] of signalHandlers) process.off(sig, h)
  signalHandlers.clear()
}

/** Registers a synchronous cleanup; returns a function that unregisters it (without running it). */
export function onExitCleanup(fn: () => void): () => void {
  hooks.add(fn)
  install()
  return () => {
    hooks.delete(fn)
    if (hooks.size === 0) uninstall()
  }
}

/** Number of hooks still registered (tests). */
export function pendingCleanups(): number {
  return hooks.size
}
