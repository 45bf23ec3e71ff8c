// GUIDs as GPT stores them: the first three fields little-endian ("mixed-endian"), the rest as is.
import { randomUUID } from 'node:crypto'
import { InvalidInputError } from '../../impl/types/errors.ts'

const CANONICAL = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

export function guidToBytes(guid: string): Buffer {
  if (!CANONICAL.test(guid)) throw new InvalidInputError('GUID', `${JSON.stringify(guid)} is not canonical (8-4-4-4-12 hex)`)
  const h = guid.replaceAll('-', '')
  const raw = Buffer.from(h, 'hex')
  const out = Buffer.from(raw)
  out.writeUInt32LE(raw.readUInt32BE(0), 0)
  out.writeUInt16LE(raw.readUInt16BE(4), 4)
  out.writeUInt16LE(raw.readUInt16BE(6), 6)
  return out
}

export function guidFromBytes(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, 16)
  const raw = Buffer.alloc(16)
  raw.writeUInt32BE(b.readUInt32LE(0), 0)
  raw.writeUInt16BE(b.readUInt16LE(4), 4)
  raw.writeUInt16BE(b.readUInt16LE(6), 6)
  b.copy(raw, 8, 8, 16)
  const h = raw.toString('hex').toUpperCase()
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

export function randomGuid(): string {
  return randomUUID().toUpperCase()
}

/** Linux filesystem data partition type. */
export const LINUX_FS_TYPE_GUID = '0FC63DAF-8483-4772-8E79-3D69D8477DE4'
