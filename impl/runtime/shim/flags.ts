// Go `flag`-style command line of containerd-shim-<name>-v2 (protocols.md §3.3, §4.3):
// `-name value`, `--name value`, `-name=value`, boolean `-debug` / `-debug=true`; parsing stops at
// the first non-flag argument (the action: `start`, `delete`, or none for the daemon) or at `--`.
import { createHash } from 'node:crypto'
import { posix } from 'node:path'

export interface ShimFlags {
  namespace: string
  address: string
  publishBinary: string
  id: string
  bundle: string
  socket: string
  debug: boolean
  version: boolean
  /** `start`, `delete`, or '' (daemon). */
  action: string
  /** Arguments after the action. */
  rest: string[]
}

const STRING_FLAGS: Record<string, keyof ShimFlags> = {
  namespace: 'namespace', address: 'address', 'publish-binary': 'publishBinary', id: 'id', bundle: 'bundle', socket: 'socket',
}
const BOOL_FLAGS: Record<string, keyof ShimFlags> = { debug: 'debug', v: 'version' }

export class FlagError extends Error {}

export function parseShimFlags(argv: readonly string[]): ShimFlags {
  const f: ShimFlags = { namespace: '', address: '', publishBinary: '', id: '', bundle: '', socket: '', debug: false, version: false, action: '', rest: [] }
  let i = 0
  for (; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') {
      i++
      break
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(a)
    if (!m || a === '-') break
    const [, name, inline] = m as unknown as [string, string, string | undefined]
    if (name in BOOL_FLAGS) {
      const v = inline === undefined ? true : ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(inline)
      if (inline !== undefined && !v && !['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(inline)) throw new FlagError(`invalid boolean value ${JSON.stringify(inline)} for -${name}`)
      ;(f as unknown as Record<string, unknown>)[BOOL_FLAGS[name]!] = v
    } else if (name in STRING_FLAGS) {
      let v = inline
      if (v === undefined) {
        if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`)
        v = argv[++i]!
      }
      ;(f as unknown as Record<string, unknown>)[STRING_FLAGS[name]!] = v
    } else {
      throw new FlagError(`flag provided but not defined: -${name}`)
    }
  }
  f.action = argv[i] ?? ''
  f.rest = argv.slice(i + 1)
  return f
}

/** Where shim sockets live (containerd's convention; KATAREF_SHIM_SOCKET_DIR overrides it for tests). */
export function socketDir(env: Record<string, string | undefined> = process.env): string {
  return env.KATAREF_SHIM_SOCKET_DIR || '/run/containerd/s'
}

/** `unix://<dir>/` + hex(sha256(`<address>/<namespace>/<id>`)) (path cleaned like Go's filepath.Join). */
export function shimSocketAddress(address: string, namespace: string, id: string, dir = socketDir()): string {
  const digest = createHash('sha256').update(posix.join(address, namespace, id)).digest('hex')
  return `unix://${posix.join(dir, digest)}`
}

export function addressPath(address: string): string {
  return address.replace(/^unix:\/\//, '')
}
