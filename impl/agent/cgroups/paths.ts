// Cgroup path rules of the agent (spec §2; upstream rustjail container.rs, cgroups/fs/mod.rs,
// cgroups/systemd/*.rs, 4b5b788918 and 4e3d257dc0). Pure string functions: no filesystem access.
import { KatarefError, Code } from '../../types/errors.ts'

export class CgroupPathError extends KatarefError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super(message, Code.INVALID_ARGUMENT, context)
  }
}

/** cgroupfs manager: "" → `/<cid>`; otherwise every `:` becomes `/` (a systemd triple turns relative). */
export function cgroupfsCpath(cgroupsPath: string, containerId: string): string {
  if (cgroupsPath === '') return `/${containerId}`
  return cgroupsPath.replaceAll(':', '/')
}

/** systemd slice → parent path (`a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`; `-.slice` → ""). */
export function expandSlice(slice: string): string {
  if (!slice.endsWith('.slice') || slice.includes('/')) throw new CgroupPathError(`invalid slice name ${JSON.stringify(slice)}`, { slice })
  if (slice === '-.slice') return ''
  const stem = slice.slice(0, -'.slice'.length)
  const parts = stem.split('-')
  if (parts.some((p) => p === '')) throw new CgroupPathError(`invalid slice name ${JSON.stringify(slice)}: empty part`, { slice })
  const out: string[] = []
  let prefix = ''
  for (const p of parts) {
    prefix = prefix === '' ? p : `${prefix}-${p}`
    out.push(`${prefix}.slice`)
  }
  return out.join('/')
}

/** systemd manager cpath for a cgroupsPath (`slice:prefix:name`). */
export function systemdCpath(cgroupsPath: string, containerId: string): string {
  const s = cgroupsPath.length === 2 ? `system.slice:kata_agent:${containerId}` : cgroupsPath
  const parts = s.split(':')
  if (parts.length !== 3) throw new CgroupPathError(`invalid cpath ${JSON.stringify(cgroupsPath)}`, { cgroupsPath })
  const [sliceRaw, prefix, name] = parts as [string, string, string]
  const parent = expandSlice(sliceRaw === '' ? 'system.slice' : sliceRaw)
  const unit = name.endsWith('.slice') ? name : prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`
  return parent === '' ? `/${unit}` : `${parent}/${unit}`
}

/** Strips every leading `/`. */
export function trimLeadingSlashes(p: string): string {
  return p.replace(/^\/+/, '')
}

/**
 * The path the init-subcgroup existence check probes: root + cpath with all leading slashes stripped
 * (string concatenation semantics; an absolute cpath never replaces the root — the 4e3d257dc0 fix).
 */
export function cgroupDir(root: string, cpath: string): string {
  const rel = trimLeadingSlashes(cpath)
  const base = root.replace(/\/+$/, '')
  return rel === '' ? base || '/' : `${base}/${rel}`
}

/** Subcgroup path: subcgroup trimmed of `/` on both ends; empty → cpath unchanged, else `cpath/trimmed`. */
export function subcgroupPath(cpath: string, subcgroup: string): string {
  const t = subcgroup.replace(/^\/+|\/+$/g, '')
  if (t === '') return cpath
  return `${cpath.replace(/\/+$/, '')}/${t}`
}

/** Name of the subcgroup exec processes go to when it exists (only the literal `init` at HEAD). */
export const INIT_SUBCGROUP = '/init/'
