// DAN (directly attachable network, spec §9): `<dan_conf>/<sandbox-id>.json` describes the
// sandbox's interfaces; when it exists no network namespace is used. Parsing mirrors runtime-rs
// resource/src/network/dan.rs serde, with defaults applied and errors naming file and field.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { Code, errorMessage, KatarefError } from '../../../types/errors.ts'

export class DanConfigError extends KatarefError {
  constructor(readonly file: string, readonly field: string, problem: string, options?: ErrorOptions) {
    super(`DAN config ${file}: ${field ? `${field}: ` : ''}${problem}`, Code.INVALID_ARGUMENT, { file, field }, options)
  }
}

export type DanDeviceKind =
  | { type: 'vhost-user'; path: string; queueNum: number; queueSize: number }
  | { type: 'host-tap'; tapName: string; queueNum: number; queueSize: number }

export interface DanInterface {
  ipAddresses: string[]
  mtu: number
  ntype: string
  flags: number
}
export interface DanRoute {
  dest: string
  gateway: string
  source: string
  scope: number
  flags: number
  mtu: number
}
export interface DanNeighbor {
  ipAddress?: string
  hardwareAddr: string
  state: number
  flags: number
}
export interface DanDevice {
  name: string
  /** Given, or a random locally administered unicast MAC. */
  guestMac: string
  device: DanDeviceKind
  networkInfo: { interface: DanInterface; routes: DanRoute[]; neighbors: DanNeighbor[] }
}
export interface DanConfig {
  netns?: string
  devices: DanDevice[]
}

/**
 * `<dan_conf>/<sandbox-id>.json`. upstream-gap 10 (mirrored): an empty dan_conf (key absent)
 * gives `<sandbox-id>.json`, relative to the working directory.
 */
export function danConfigPath(danConf: string, sandboxId: string): string {
  return danConf === '' ? `${sandboxId}.json` : join(danConf, `${sandboxId}.json`)
}

/** A random locally administered (bit 1 set) unicast (bit 0 clear) MAC. */
export function randomGuestMac(random: (n: number) => Uint8Array = randomBytes): string {
  const b = Uint8Array.from(random(6))
  b[0] = (b[0]! & 0xfe) | 0x02
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

export interface ParseDanOptions {
  random?: (n: number) => Uint8Array
}

/** Parses DAN JSON text; `file` is only used in messages. */
export function parseDanConfig(text: string, file: string, opts: ParseDanOptions = {}): DanConfig {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw new DanConfigError(file, '', `invalid JSON: ${errorMessage(e)}`, { cause: e })
  }
  const r = new Reader(file)
  if (Array.isArray(doc)) {
    throw new DanConfigError(file, '', 'expected an object {"netns"?, "devices": [...]}, got an array (upstream-gap 12: the array form in the upstream comment is not accepted)')
  }
  const top = r.object(doc, '')
  const netns = r.optString(top, 'netns', '')
  const devices = r.array(top.devices, 'devices').map((d, i) => readDevice(r, d, `devices[${i}]`, opts))
  return netns === undefined ? { devices } : { netns, devices }
}

/** Reads `<dan_conf>/<sandbox-id>.json`; undefined when the file does not exist. */
export function loadDanConfig(danConf: string, sandboxId: string, opts: ParseDanOptions = {}): { path: string; config: DanConfig } | undefined {
  const path = danConfigPath(danConf, sandboxId)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new DanConfigError(path, '', `cannot read: ${errorMessage(e)}`, { cause: e })
  }
  return { path, config: parseDanConfig(text, path, opts) }
}

function readDevice(r: Reader, v: unknown, at: string, opts: ParseDanOptions): DanDevice {
  const o = r.object(v, at)
  const name = r.string(o, 'name', at)
  const mac = r.optString(o, 'guest_mac', at)
  if (mac !== undefined && !MAC_RE.test(mac)) throw new DanConfigError(r.file, `${at}.guest_mac`, `expected a MAC address like 02:00:00:00:00:01, got ${JSON.stringify(mac)}`)
  const dev = r.object(o.device, `${at}.device`)
  const type = r.string(dev, 'type', `${at}.device`)
  const queueNum = r.u32(dev, 'queue_num', `${at}.device`, 0)
  const queueSize = r.u32(dev, 'queue_size', `${at}.device`, 0)
  let device: DanDeviceKind
  if (type === 'host-tap') device = { type, tapName: r.string(dev, 'tap_name', `${at}.device`), queueNum, queueSize }
  else if (type === 'vhost-user') device = { type, path: r.string(dev, 'path', `${at}.device`), queueNum, queueSize }
  else throw new DanConfigError(r.file, `${at}.device.type`, `expected "host-tap" or "vhost-user", got ${JSON.stringify(type)}`)

  const niAt = `${at}.network_info`
  const ni = r.object(o.network_info, niAt)
  const ifAt = `${niAt}.interface`
  const itf = r.object(ni.interface, ifAt)
  const ipAddresses = r.array(itf.ip_addresses, `${ifAt}.ip_addresses`).map((a, i) => {
    const field = `${ifAt}.ip_addresses[${i}]`
    if (typeof a !== 'string') throw new DanConfigError(r.file, field, `expected CIDR string, got ${describe(a)}`)
    if (!isCidr(a)) throw new DanConfigError(r.file, field, `expected CIDR like 10.0.0.2/24, got ${JSON.stringify(a)}`)
    return a
  })
  const iface: DanInterface = {
    ipAddresses,
    mtu: r.u32(itf, 'mtu', ifAt, 1500),
    ntype: r.optString(itf, 'ntype', ifAt) ?? '',
    flags: r.u32(itf, 'flags', ifAt, 0),
  }
  const routes = (ni.routes === undefined ? [] : r.array(ni.routes, `${niAt}.routes`)).map((x, i) => {
    const rAt = `${niAt}.routes[${i}]`
    const ro = r.object(x, rAt)
    return {
      dest: r.optString(ro, 'dest', rAt) ?? '',
      gateway: r.optString(ro, 'gateway', rAt) ?? '',
      source: r.optString(ro, 'source', rAt) ?? '',
      scope: r.u32(ro, 'scope', rAt, 0),
      flags: r.u32(ro, 'flags', rAt, 0),
      mtu: r.u32(ro, 'mtu', rAt, 0),
    }
  })
  const neighbors = (ni.neighbors === undefined ? [] : r.array(ni.neighbors, `${niAt}.neighbors`)).map((x, i) => {
    const nAt = `${niAt}.neighbors[${i}]`
    const no = r.object(x, nAt)
    const ip = r.optString(no, 'ip_address', nAt)
    const n: DanNeighbor = {
      hardwareAddr: r.optString(no, 'hardware_addr', nAt) ?? '',
      state: r.u32(no, 'state', nAt, 0),
      flags: r.u32(no, 'flags', nAt, 0),
    }
    return ip === undefined ? n : { ipAddress: ip, ...n }
  })
  return { name, guestMac: mac ?? randomGuestMac(opts.random), device, networkInfo: { interface: iface, routes, neighbors } }
}

function isCidr(s: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(s)
  if (!m) return false
  const v = isIP(m[1]!)
  const prefix = Number(m[2])
  return (v === 4 && prefix <= 32) || (v === 6 && prefix <= 128)
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (field missing)'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`
  return `${typeof v} ${typeof v === 'object' ? '' : String(v)}`.trim()
}

class Reader {
  constructor(readonly file: string) {}
  private fail(field: string, expected: string, v: unknown): never {
    throw new DanConfigError(this.file, field, `expected ${expected}, got ${describe(v)}`)
  }
  private f(at: string, key: string): string {
    return at ? `${at}.${key}` : key
  }
  object(v: unknown, at: string): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.fail(at || '(top level)', 'object', v)
    return v as Record<string, unknown>
  }
  array(v: unknown, at: string): unknown[] {
    return Array.isArray(v) ? v : this.fail(at, 'array', v)
  }
  string(o: Record<string, unknown>, key: string, at: string): string {
    const v = o[key]
    return typeof v === 'string' ? v : this.fail(this.f(at, key), 'string', v)
  }
  optString(o: Record<string, unknown>, key: string, at: string): string | undefined {
    const v = o[key]
    if (v === undefined || v === null) return undefined
    return typeof v === 'string' ? v : this.fail(this.f(at, key), 'string', v)
  }
  u32(o: Record<string, unknown>, key: string, at: string, dflt: number): number {
    const v = o[key]
    if (v === undefined || v === null) return dflt
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : this.fail(this.f(at, key), 'integer in 0..4294967295', v)
  }
}
