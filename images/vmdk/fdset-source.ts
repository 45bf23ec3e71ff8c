// Hands a VMDK layout to QEMU without QEMU opening any host path itself (§6.3): the privileged
// side opens every extent file, registers each fd in an fdset, renders the descriptor with
// `/dev/fdset/<id>` paths and passes the descriptor as one more fd.
//
// Deviation: Node has no memfd_create, so with direct I/O off the descriptor lives in an unlinked
// file under /dev/shm (else the OS temp dir) rather than a memfd named `kata-qemu-vmdk`; it is just
// as anonymous once unlinked.
import { open, rm, type FileHandle } from 'node:fs/promises'
import { constants, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { tmpdir } from 'node:os'
import { randomBytes } from 'node:crypto'
import { InvalidInputError, KatarefError, Code, errorMessage } from '../../impl/types/errors.ts'
import { renderVmdkDescriptor } from './descriptor.ts'
import type { VmdkExtent } from './extents.ts'

/** Registers an open fd with QEMU (`-add-fd` / QMP add-fd) and returns its `/dev/fdset/<id>` path. */
export type FdsetRegistrar = (fd: number, label: string) => Promise<string>

export interface VmdkBlockSourceOptions {
  readOnly: boolean
  /** O_DIRECT on the descriptor (never on extents). */
  direct: boolean
  /** The reserved `merged_fs.vmdk` path; with direct I/O the descriptor is made in its directory. */
  reservedPath: string
  register: FdsetRegistrar
}

export interface VmdkBlockSource {
  /** fdset path of the descriptor: QEMU's `file.filename`. */
  descriptorPath: string
  descriptor: string
  /** Labels in registration order (`vmdk-extent-0`, …, `vmdk-descriptor`). */
  labels: string[]
  /** Our copies of the fds; close them once QEMU holds its own. */
  close(): Promise<void>
}

export async function prepareVmdkBlockSource(extents: readonly VmdkExtent[], o: VmdkBlockSourceOptions): Promise<VmdkBlockSource> {
  if (extents.length === 0) throw new InvalidInputError('VMDK layout', 'VMDK contains no extents')
  const handles: FileHandle[] = []
  const labels: string[] = []
  const closeAll = async () => { await Promise.allSettled(handles.map((h) => h.close())) }
  try {
    const need = new Map<string, number>()
    for (const e of extents) need.set(e.path, Math.max(need.get(e.path) ?? 0, e.fileOffset + e.sectors))
    const fdsetOf = new Map<string, string>()
    let n = 0
    for (const [path, sectors] of need) {
      const fh = await open(path, o.readOnly ? constants.O_RDONLY : constants.O_RDWR).catch((e: unknown) => {
        throw new InvalidInputError(`QEMU block source ${path}`, `open QEMU block source ${path}`, { path }, { cause: e })
      })
      handles.push(fh)
      const st = await fh.stat()
      if (!st.isFile()) throw new InvalidInputError(`QEMU block source ${path}`, `QEMU block source ${path} is not a regular file`, { path })
      if (Math.ceil(st.size / 512) < sectors) throw new InvalidInputError(`VMDK extent ${path}`, `VMDK extent ${path} is shorter than its declared layout`, { path, sizeBytes: st.size, declaredSectors: sectors })
      const label = `vmdk-extent-${n++}`
      fdsetOf.set(path, await o.register(fh.fd, label))
      labels.push(label)
    }
    const descriptor = renderVmdkDescriptor(extents, (e) => fdsetOf.get(e.path)!)
    let where: string
    if (o.direct) {
      const parent = dirname(o.reservedPath)
      if (parent === o.reservedPath || parent === '.') throw new InvalidInputError('VMDK reserved path', `${o.reservedPath} has no parent directory for the descriptor`)
      where = parent
    } else {
      where = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
    }
    const tmp = join(where, `.kata-qemu-vmdk-${randomBytes(6).toString('hex')}`)
    const writer = await open(tmp, 'wx+', 0o600)
    handles.push(writer)
    try {
      await writer.writeFile(descriptor)
    } finally {
      await rm(tmp, { force: true }) // anonymous from now on; the fd keeps it alive
    }
    const flags = (o.readOnly ? constants.O_RDONLY : constants.O_RDWR) | (o.direct ? constants.O_DIRECT : 0)
    const reopened = await open(`/proc/self/fd/${writer.fd}`, flags).catch((e: unknown) => {
      throw new KatarefError(`reopening the VMDK descriptor${o.direct ? ' with O_DIRECT' : ''}: ${errorMessage(e)}`, Code.INTERNAL, {}, { cause: e })
    })
    handles.push(reopened)
    const descriptorPath = await o.register(reopened.fd, 'vmdk-descriptor')
    labels.push('vmdk-descriptor')
    return { descriptorPath, descriptor, labels, close: closeAll }
  } catch (e) {
    await closeAll()
    throw e
  }
}

/** fdset opaque string QEMU shows for each registered fd. */
export const fdsetOpaque = (nodeName: string, label: string) => `kata-block:${nodeName}:${label}`
