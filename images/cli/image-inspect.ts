// `kataref image inspect`: a printable table of a GPT disk (VMDK descriptor, raw image or bare
// head image): header fields, partitions, what each partition holds (EROFS? dm-verity sidecar?).
import { open, stat } from 'node:fs/promises'
import { InvalidInputError } from '../../impl/types/errors.ts'
import { parseGptHead, FIRST_USABLE_LBA, SECTOR_SIZE } from '../gpt/index.ts'
import { openFlatVmdk } from '../vmdk/index.ts'
import { readDmVeritySidecar } from '../../impl/types/dmverity/index.ts'

const EROFS_MAGIC = 0xe0f5e1e2

export interface ImageInspectRow {
  partition: number
  name: string
  startLba: number
  endLba: number
  sizeBytes: number
  content: string
  file: string
  verity: string
}

function table(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()
  return [line(headers), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n')
}

export async function imageInspect(disk: string): Promise<string> {
  const st = await stat(disk).catch((e: unknown) => {
    throw new InvalidInputError(`disk ${disk}`, 'cannot be read', { path: disk }, { cause: e })
  })
  if (!st.isFile()) throw new InvalidInputError(`disk ${disk}`, 'is not a regular file', { path: disk })
  const start = Buffer.alloc(21)
  const fh = await open(disk, 'r')
  try { await fh.read(start, 0, start.length, 0) } finally { await fh.close() }
  let read: (offset: number, length: number) => Promise<Buffer>
  let kind: string
  let fileOf: (lba: number) => { file: string; offsetBytes: number } | undefined = () => undefined
  if (start.toString('latin1') === '# Disk DescriptorFile') {
    const vmdk = await openFlatVmdk(disk)
    read = vmdk.read
    kind = `VMDK ${vmdk.descriptor.createType}, ${vmdk.descriptor.extents.length} extents`
    fileOf = (lba) => {
      let s = 0
      for (const e of vmdk.descriptor.extents) {
        if (lba < s + e.sectors) return { file: e.path, offsetBytes: (e.fileOffset + lba - s) * 512 }
        s += e.sectors
      }
      return undefined
    }
  } else {
    // Raw disks can be large: read only what is asked; bytes past the end read as zero.
    read = async (o, l) => {
      const b = Buffer.alloc(l)
      const f = await open(disk, 'r')
      try { await f.read(b, 0, l, o) } finally { await f.close() }
      return b
    }
    kind = st.size === 1 << 20 ? 'GPT head image' : 'raw image'
  }
  const head = parseGptHead(await read(0, FIRST_USABLE_LBA * SECTOR_SIZE))
  const rows: ImageInspectRow[] = []
  for (const p of head.partitions) {
    const sb = await read(p.firstLba * SECTOR_SIZE + 1024, 4)
    const where = fileOf(p.firstLba)
    let verity = '-'
    if (where && where.offsetBytes === 0) {
      const sidecar = await readDmVeritySidecar(`${where.file}.dmverity`).catch(() => undefined)
      if (sidecar) verity = `root ${sidecar.roothash.slice(0, 16)}… @${sidecar.hashoffset}`
    }
    rows.push({
      partition: p.number, name: p.name, startLba: p.firstLba, endLba: p.lastLba,
      sizeBytes: (p.lastLba - p.firstLba + 1) * SECTOR_SIZE,
      content: sb.length === 4 && sb.readUInt32LE(0) === EROFS_MAGIC ? 'erofs' : 'unknown',
      file: where?.file ?? '-', verity,
    })
  }
  const h = head.header
  const lines = [
    `${disk}: ${kind}`,
    `disk GUID ${h.diskGuid}; usable LBAs ${h.firstUsableLba}–${h.lastUsableLba}; alternate LBA ${h.alternateLba}; protective MBR size ${head.mbr.sizeLba}`,
    `header CRC32 0x${h.headerCrc32.toString(16).padStart(8, '0')} ok; entries ${h.numberOfEntries}×${h.sizeOfEntry} CRC32 0x${h.entriesCrc32.toString(16).padStart(8, '0')} ok`,
    '',
    table(['#', 'name', 'start', 'end', 'size', 'content', 'dm-verity', 'file'],
      rows.map((r) => [String(r.partition), r.name, String(r.startLba), String(r.endLba), String(r.sizeBytes), r.content, r.verity, r.file])),
  ]
  return `${lines.join('\n')}\n`
}
