// Reads bytes of the virtual disk a FLAT-extent VMDK descriptor describes, straight from its
// extent files (relative names resolve against the descriptor's directory, as QEMU does).
import { open, readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join } from 'node:path'
import { InvalidInputError } from '../../impl/types/errors.ts'
import { parseVmdkDescriptor, type ParsedVmdkDescriptor } from './descriptor.ts'

export interface FlatVmdk {
  path: string
  descriptor: ParsedVmdkDescriptor
  /** Reads `length` bytes at virtual byte `offset`; bytes past an extent file's end read as zero. */
  read(offset: number, length: number): Promise<Buffer>
}

export async function openFlatVmdk(path: string): Promise<FlatVmdk> {
  const text = await readFile(path).catch((e: unknown) => {
    throw new InvalidInputError(`VMDK descriptor ${path}`, 'cannot be read', { path }, { cause: e })
  })
  const descriptor = parseVmdkDescriptor(text)
  const base = dirname(path)
  for (const e of descriptor.extents) {
    if (e.type !== 'FLAT' && e.type !== 'ZERO') throw new InvalidInputError(`VMDK descriptor ${path}`, `extent type ${e.type} is not supported (FLAT and ZERO only)`)
  }
  const read = async (offset: number, length: number): Promise<Buffer> => {
    const out = Buffer.alloc(length)
    let extStart = 0
    for (const e of descriptor.extents) {
      const extBytes = e.sectors * 512
      const lo = Math.max(offset, extStart)
      const hi = Math.min(offset + length, extStart + extBytes)
      if (lo < hi && e.type === 'FLAT') {
        const file = isAbsolute(e.path) ? e.path : join(base, e.path)
        const fh = await open(file, 'r').catch((err: unknown) => {
          throw new InvalidInputError(`VMDK extent ${file}`, 'cannot be opened', { path: file }, { cause: err })
        })
        try {
          await fh.read(out, lo - offset, hi - lo, e.fileOffset * 512 + (lo - extStart))
        } finally {
          await fh.close()
        }
      }
      extStart += extBytes
    }
    return out
  }
  return { path, descriptor, read }
}
