// Assembling a GPT VMDK over 64 × 16 MiB EROFS-sized layers vs concatenating them with `cat`.
// Prints the layer bytes our assembly copied (it references layers in place: expected 0, measured
// as blocks allocated in the files it made besides head and descriptor) and both times. Never asserts timings.
// Run: npx tsx bench/assembly/assembly-vs-cat.ts [layers=64] [MiB per layer=16]
import { mkdtemp, rm, open, readFile, stat, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { execa } from 'execa'
import { assembleGptDisk } from '../../images/gpt/index.ts'
import { printTable } from '../report.ts'

export interface AssemblyBenchResult {
  layers: number
  layerMiB: number
  layerBytesTotal: number
  /** Bytes allocated on disk by assembly in files other than head and descriptor: layer data copied. */
  layerBytesCopied: number
  /** write(2) bytes of this process during assembly beyond head + descriptor (libuv eventfd wake-ups, 8 B each). */
  otherBytesWritten: number
  metadataBytesWritten: number
  assemblySeconds: number
  catSeconds: number
  speedup: number
}

async function ioCounters(): Promise<{ rchar: number; wchar: number }> {
  const t = await readFile('/proc/self/io', 'utf8')
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(t)?.[1] ?? NaN)
  return { rchar: get('rchar'), wchar: get('wchar') }
}

export async function runAssemblyBench(layers = 64, layerMiB = 16): Promise<AssemblyBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'kataref-bench-assembly-'))
  try {
    const paths: string[] = []
    const chunk = randomBytes(1 << 20)
    for (let i = 0; i < layers; i++) {
      const p = join(dir, 'snapshots', String(i + 1), 'layer.erofs')
      await execa('mkdir', ['-p', join(dir, 'snapshots', String(i + 1))])
      const fh = await open(p, 'w')
      for (let m = 0; m < layerMiB; m++) { chunk[0] = (i * 131 + m) & 0xff; await fh.write(chunk) }
      // Not a whole number of 1 MiB: every partition after the first needs a padding file.
      await fh.write(chunk.subarray(0, 4096))
      await fh.close()
      paths.push(p)
    }
    const cdir = join(dir, 'run', 'sid', 'cid')
    const before = await ioCounters()
    const t0 = performance.now()
    const disk = await assembleGptDisk({ containerDir: cdir, layers: paths, descriptorPath: join(cdir, 'disk.vmdk') })
    const assemblySeconds = (performance.now() - t0) / 1000
    const after = await ioCounters()
    const metadataBytesWritten = (await stat(disk.headPath)).size + Buffer.byteLength(disk.descriptor)
    const otherBytesWritten = after.wchar - before.wchar - metadataBytesWritten
    let layerBytesCopied = 0
    for (const f of await readdir(cdir)) {
      const p = join(cdir, f)
      if (p !== disk.headPath && p !== disk.descriptorPath) layerBytesCopied += (await stat(p)).blocks * 512
    }
    await disk.files.cleanup()
    const t1 = performance.now()
    await execa('sh', ['-c', `cat "$@" > ${JSON.stringify(join(dir, 'cat.raw'))}`, 'sh', ...paths])
    const catSeconds = (performance.now() - t1) / 1000
    const layerBytesTotal = layers * (layerMiB * (1 << 20) + 4096)
    return { layers, layerMiB, layerBytesTotal, layerBytesCopied, otherBytesWritten, metadataBytesWritten, assemblySeconds, catSeconds, speedup: catSeconds / assemblySeconds }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runAssemblyBench(Number(process.argv[2] ?? 64), Number(process.argv[3] ?? 16))
  printTable('assembly', [
    ['layers', `${r.layers}`, `${r.layerMiB} MiB + 4 KiB each, ${(r.layerBytesTotal / 2 ** 20).toFixed(0)} MiB total`],
    ['layer bytes copied', `${r.layerBytesCopied}`, 'allocated in files other than head + descriptor; must be 0'],
    ['metadata written', `${r.metadataBytesWritten}`, `bytes: head + descriptor; pads are sparse; other write(2) bytes ${r.otherBytesWritten} (event-loop wake-ups)`],
    ['GPT VMDK assembly', `${r.assemblySeconds.toFixed(3)} s`],
    ['cat of the layers', `${r.catSeconds.toFixed(3)} s`],
    ['speed-up', `${r.speedup.toFixed(1)}x`, 'cat time / assembly time'],
  ])
}
