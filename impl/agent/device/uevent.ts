// Uevent intake (spec §3, src/agent/src/uevent.rs): parsing, the devpath-keyed store of add events,
// one-shot watchers, wait_for_uevent with the hotplug timeout.
//
// Source of events in this agent: sysfs polling with a deadline (SysfsUeventSource), not a
// NETLINK_KOBJECT_UEVENT socket. Why: a netlink socket from Node needs a blocking recv in koffi's
// threadpool (one libuv worker parked for the agent's lifetime, shared with the virtio-serial reads),
// plus native socket/bind structure handling; polling the class directories the matchers care about
// (block, net, vfio) only while someone waits costs nothing when idle, sees cold-plugged devices and
// races for free (the same "scan the store first" guarantee), and its latency (50 ms) is small
// against a TCG hotplug (~1 s). What polling cannot see: remove-then-add of the same devpath between
// two polls, and events of devices that leave no sysfs node — no handler here needs either.
import { readFile, readdir, readlink } from 'node:fs/promises'
import { Code, KatarefError } from '../../types/errors.ts'
import type { Uevent, UeventMatcher } from './matchers.ts'

export class UeventTimeoutError extends KatarefError {
  constructor(ms: number, matcher: string) {
    super(`Timeout after ${formatDuration(ms)} waiting for uevent ${matcher}`, Code.DEADLINE_EXCEEDED, { matcher, timeoutMs: ms })
  }
}

/** Rust Duration Debug style: 3s, 1.5s, 500ms. */
export function formatDuration(ms: number): string {
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`
}

export const DEFAULT_HOTPLUG_TIMEOUT_MS = 3_000

/** `agent.hotplug_timeout=<seconds>` from a kernel command line (must be > 0), else the default. */
export function hotplugTimeoutFromCmdline(cmdline: string): number {
  const m = /(?:^|\s)agent\.hotplug_timeout=(\S+)/.exec(cmdline)
  if (!m) return DEFAULT_HOTPLUG_TIMEOUT_MS
  const n = Number(m[1])
  return Number.isFinite(n) && n > 0 ? n * 1000 : DEFAULT_HOTPLUG_TIMEOUT_MS
}

/** Parses a raw kernel uevent: NUL-separated, first field (`action@devpath`) skipped, KEY=VALUE split at the first `=`. */
export function parseUevent(raw: Uint8Array | string): Uevent {
  const text = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8')
  const ev: Uevent = { action: '', devpath: '', subsystem: '', devname: '', seqnum: '', interface: '' }
  for (const field of text.split('\0').slice(1)) {
    const i = field.indexOf('=')
    if (i < 0) continue
    const k = field.slice(0, i)
    const v = field.slice(i + 1)
    if (k === 'ACTION') ev.action = v
    else if (k === 'DEVPATH') ev.devpath = v
    else if (k === 'SUBSYSTEM') ev.subsystem = v
    else if (k === 'DEVNAME') ev.devname = v
    else if (k === 'SEQNUM') ev.seqnum = v
    else if (k === 'INTERFACE') ev.interface = v
  }
  return ev
}

interface Watcher {
  matcher: UeventMatcher
  fire(ev: Uevent): void
}

export class UeventStore {
  private readonly events = new Map<string, Uevent>()
  private watchers: Watcher[] = []

  constructor(private readonly now: () => number = Date.now) {}

  /** add → stored (overwriting) and matching watchers fired once; remove → forgotten; others ignored. */
  handle(ev: Uevent): void {
    if (ev.action === 'add') {
      this.events.set(ev.devpath, ev)
      const fired = this.watchers.filter((w) => w.matcher.matches(ev))
      this.watchers = this.watchers.filter((w) => !fired.includes(w))
      for (const w of fired) w.fire(ev)
    } else if (ev.action === 'remove') {
      this.events.delete(ev.devpath)
    }
  }

  get pending(): number {
    return this.watchers.length
  }

  stored(devpath: string): Uevent | undefined {
    return this.events.get(devpath)
  }

  /** Scans stored events first; otherwise waits (one-shot watcher) up to timeoutMs. */
  waitFor(matcher: UeventMatcher, timeoutMs = DEFAULT_HOTPLUG_TIMEOUT_MS, setTimer: (f: () => void, ms: number) => { cancel(): void } = realTimer): Promise<Uevent> {
    for (const ev of this.events.values()) if (matcher.matches(ev)) return Promise.resolve(ev)
    return new Promise((resolve, reject) => {
      const w: Watcher = {
        matcher,
        fire: (ev) => {
          timer.cancel()
          resolve(ev)
        },
      }
      this.watchers.push(w)
      const timer = setTimer(() => {
        this.watchers = this.watchers.filter((x) => x !== w)
        reject(new UeventTimeoutError(timeoutMs, matcher.describe))
      }, timeoutMs)
    })
  }
}

function realTimer(f: () => void, ms: number) {
  const t = setTimeout(f, ms)
  return { cancel: () => clearTimeout(t) }
}

/**
 * Synthesises add/remove uevents from sysfs: every entry of /sys/class/{block,net} and
 * /sys/devices/virtual/vfio becomes an `add` with the devpath its link points to, the DEVNAME /
 * INTERFACE of its `uevent` file; entries that disappear become `remove`.
 */
export class SysfsUeventSource {
  private known = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private users = 0

  constructor(
    private readonly store: UeventStore,
    private readonly sysRoot = '/sys',
    private readonly intervalMs = 50,
  ) {}

  async scan(): Promise<void> {
    const seen = new Set<string>()
    for (const subsystem of ['block', 'net']) {
      for (const name of await readdir(`${this.sysRoot}/class/${subsystem}`).catch(() => [] as string[])) {
        const link = await readlink(`${this.sysRoot}/class/${subsystem}/${name}`).catch(() => undefined)
        if (!link) continue
        const devpath = '/' + link.split('/').filter((c) => c !== '..' && c !== '').join('/')
        const props = await readFile(`${this.sysRoot}${devpath}/uevent`, 'utf8').catch(() => '')
        const kv = Object.fromEntries(props.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
        seen.add(devpath)
        if (!this.known.has(devpath)) {
          this.store.handle({ action: 'add', devpath, subsystem, devname: kv.DEVNAME ?? (subsystem === 'block' ? name : ''), seqnum: '', interface: kv.INTERFACE ?? (subsystem === 'net' ? name : '') })
        }
      }
    }
    for (const group of await readdir(`${this.sysRoot}/devices/virtual/vfio`).catch(() => [] as string[])) {
      const devpath = `/devices/virtual/vfio/${group}`
      seen.add(devpath)
      if (!this.known.has(devpath)) this.store.handle({ action: 'add', devpath, subsystem: 'vfio', devname: `vfio/${group}`, seqnum: '', interface: '' })
    }
    for (const d of this.known) if (!seen.has(d)) this.store.handle({ action: 'remove', devpath: d, subsystem: '', devname: '', seqnum: '', interface: '' })
    this.known = seen
  }

  /** Scan once, then keep polling until the returned release function is called by every user. */
  async acquire(): Promise<() => void> {
    this.users++
    await this.scan()
    if (!this.timer) {
      const tick = () => {
        this.timer = setTimeout(() => void this.scan().finally(() => this.timer && tick()), this.intervalMs)
      }
      tick()
    }
    let released = false
    return () => {
      if (released) return
      released = true
      if (--this.users === 0 && this.timer) {
        clearTimeout(this.timer)
        this.timer = undefined
      }
    }
  }

  /** wait_for_uevent over polled sysfs. */
  async waitFor(matcher: UeventMatcher, timeoutMs = DEFAULT_HOTPLUG_TIMEOUT_MS): Promise<Uevent> {
    const release = await this.acquire()
    try {
      return await this.store.waitFor(matcher, timeoutMs)
    } finally {
      release()
    }
  }
}
