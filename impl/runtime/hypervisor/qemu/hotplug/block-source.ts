// Opening a block source in the runtime and handing it to QEMU by fd (spec §3 step 2, HEAD):
// open (read, write unless read-only, O_DIRECT if direct, close-on-exec), accept a regular
// file or block device, `add-fd` with opaque `kata-block:<node>:<label>` (fd in SCM_RIGHTS),
// and give QEMU `/dev/fdset/<id>`. A VMDK layout passes each extent file and then a
// generated descriptor that names the extents by their `/dev/fdset/<id>`.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HotplugError } from './hotplug-errors.ts'
import type { VmdkLayout } from '../../../device/device-types.ts'

export interface PreparedBlockSource {
  /** File name to give the protocol node (`/dev/fdset/<id>`). */
  filename: string
  isRegularFile: boolean
}

/** Registers one open descriptor with QEMU under `label`; returns the `/dev/fdset/<id>` name. */
export type RegisterFd = (fd: number, label: string) => Promise<string>

interface Opened {
  fd: number
  stat: fs.Stats
}

function openSource(p: string, readOnly: boolean, direct: boolean, regularOnly: boolean): Opened {
  // libuv opens every file O_CLOEXEC already.
  const flags = (readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR) | (direct ? fs.constants.O_DIRECT : 0)
  let fd: number
  try {
    fd = fs.openSync(p, flags)
  } catch (e) {
    throw HotplugError.wrap(`open QEMU block source ${p}`, e, { path: p })
  }
  try {
    const stat = fs.fstatSync(fd)
    if (regularOnly && !stat.isFile()) throw new HotplugError(`QEMU block source ${p} is not a regular file`, { path: p })
    if (!regularOnly && !stat.isFile() && !stat.isBlockDevice()) {
      throw new HotplugError(`QEMU block source ${p} is neither an allowed regular file nor block device`, { path: p })
    }
    return { fd, stat }
  } catch (e) {
    fs.closeSync(fd)
    throw e
  }
}

/** Our copy of the descriptor is closed after `register` (QEMU keeps its own dup). */
async function registerAndClose(o: Opened, label: string, register: RegisterFd): Promise<string> {
  try {
    return await register(o.fd, label)
  } finally {
    fs.closeSync(o.fd)
  }
}

export async function prepareBlockSource(
  sourcePath: string,
  vmdk: VmdkLayout | undefined,
  readOnly: boolean,
  direct: boolean,
  register: RegisterFd,
): Promise<PreparedBlockSource> {
  if (!vmdk) {
    const o = openSource(sourcePath, readOnly, direct, false)
    const isRegularFile = o.stat.isFile()
    return { filename: await registerAndClose(o, 'block-source', register), isRegularFile }
  }
  if (vmdk.extents.length === 0) throw new HotplugError('VMDK contains no extents', { path: sourcePath })

  const needed = new Map<string, number>()
  for (const x of vmdk.extents) needed.set(x.pathOnHost, Math.max(needed.get(x.pathOnHost) ?? 0, x.fileOffset + x.sectors))

  const fdsetNames = new Map<string, string>()
  for (const x of vmdk.extents) {
    if (fdsetNames.has(x.pathOnHost)) continue
    // QEMU's vmdk driver opens flat extents without O_DIRECT; fdsets need an exact match.
    const o = openSource(x.pathOnHost, readOnly, false, true)
    if (Math.ceil(o.stat.size / 512) < needed.get(x.pathOnHost)!) {
      fs.closeSync(o.fd)
      throw new HotplugError(`VMDK extent ${x.pathOnHost} is shorter than its declared layout`, { path: x.pathOnHost })
    }
    fdsetNames.set(x.pathOnHost, await registerAndClose(o, `vmdk-extent-${fdsetNames.size}`, register))
  }

  const descriptor = renderVmdkDescriptor(vmdk, fdsetNames)
  const o = openAnonymousDescriptor(sourcePath, descriptor, readOnly, direct)
  return { filename: await registerAndClose(o, 'vmdk-descriptor', register), isRegularFile: true }
}

/** A twoGbMaxExtentFlat descriptor whose extents are `/dev/fdset/<id>` names. */
export function renderVmdkDescriptor(vmdk: VmdkLayout, names: ReadonlyMap<string, string>): string {
  const total = vmdk.extents.reduce((s, x) => s + x.sectors, 0)
  if (total === 0) throw new HotplugError('VMDK contains no non-empty extents')
  const lines = ['# Disk DescriptorFile', 'version=1', 'CID=fffffffe', 'parentCID=ffffffff', 'createType="twoGbMaxExtentFlat"', '', '# Extent description']
  for (const x of vmdk.extents) {
    const n = names.get(x.pathOnHost)
    if (!n) throw new HotplugError(`missing prepared VMDK extent ${x.pathOnHost}`)
    lines.push(`RW ${x.sectors} FLAT "${n}" ${x.fileOffset}`)
  }
  const cylinders = Math.ceil(total / (63 * 16))
  lines.push('', '# The Disk Data Base', '#DDB', '', 'ddb.virtualHWVersion = "4"', `ddb.geometry.cylinders = "${cylinders}"`)
  lines.push('ddb.geometry.heads = "16"', 'ddb.geometry.sectors = "63"', 'ddb.adapterType = "ide"', '')
  return lines.join('\n')
}

/**
 * Write the descriptor to an unlinked file and reopen it with the access QEMU will ask for.
 * Node has no memfd_create; an unlinked temp file is equivalent here. With O_DIRECT the file
 * lives beside the source (tmpfs may refuse O_DIRECT).
 */
function openAnonymousDescriptor(sourcePath: string, text: string, readOnly: boolean, direct: boolean): Opened {
  const dir = direct ? path.dirname(sourcePath) : os.tmpdir()
  const tmp = path.join(dir, `.kataref-vmdk-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`)
  fs.writeFileSync(tmp, text, { mode: 0o600 })
  try {
    return openSource(tmp, readOnly, direct, true)
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}
