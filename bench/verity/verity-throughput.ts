// Throughput of our dm-verity tree builder vs `veritysetup format` on the same file.
// Prints both and the ratio; never asserts (timings depend on the machine and its load).
// Run: npx tsx bench/verity/verity-throughput.ts [MiB=256]
import { mkdtemp, rm, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { execa } from 'execa'
import { formatVerity, defaultWorkerCount } from '../../images/verity/index.ts'
import { printTable } from '../report.ts'

export interface VerityBenchResult {
  mib: number
  workers: number
  oursSeconds: number
  veritysetupSeconds: number
  oursMiBps: number
  veritysetupMiBps: number
  ratio: number
  /** CPU seconds (user + system, all threads) per run, best run: independent of other load. */
  oursCpuSeconds: number
  veritysetupCpuSeconds: number
}

async function writeRandom(path: string, mib: number): Promise<void> {
  const fh = await open(path, 'w')
  try {
    const chunk = randomBytes(1 << 20)
    for (let i = 0; i < mib; i++) {
      chunk[0] = i & 0xff // keep blocks distinct across chunks
      await fh.write(chunk)
    }
  } finally {
    await fh.close()
  }
}

/**
 * Runs a command under `sh` and reads the shell's cutime + cstime afterwards: the CPU time of the
 * child it waited for, whatever else runs on the machine (clock ticks, 1/100 s).
 */
async function childCpuSeconds(cmd: string, args: string[]): Promise<number> {
  const script = '"$@" >/dev/null && cat /proc/$$/stat'
  const { stdout } = await execa('sh', ['-c', script, 'sh', cmd, ...args])
  const fields = stdout.slice(stdout.lastIndexOf(')') + 2).split(' ')
  // After "(comm)": state is field 3, so cutime (16) and cstime (17) are at 13 and 14 here.
  return (Number(fields[13]) + Number(fields[14])) / 100
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  return (performance.now() - t) / 1000
}

export async function runVerityBench(mib = 256, runs = 5): Promise<VerityBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'kataref-bench-verity-'))
  try {
    const data = join(dir, 'data')
    await writeRandom(data, mib)
    const salt = randomBytes(32)
    const uuid = '00000000-0000-4000-8000-000000000000'
    // Warm the page cache once so both sides read from memory.
    await execa('veritysetup', ['format', data, join(dir, 'warm'), `--salt=${salt.toString('hex')}`, `--uuid=${uuid}`])
    const workers = defaultWorkerCount()
    // Interleaved so both sides see the same background load; the best run of each counts.
    let theirs = Infinity
    let ours = Infinity
    let theirsCpu = Infinity
    let oursCpu = Infinity
    const vsArgs = ['format', data, join(dir, 'theirs'), `--salt=${salt.toString('hex')}`, `--uuid=${uuid}`]
    for (let i = 0; i < runs; i++) {
      let cpu = 0
      theirs = Math.min(theirs, await timed(async () => { cpu = await childCpuSeconds('veritysetup', vsArgs) }))
      theirsCpu = Math.min(theirsCpu, cpu)
      const before = process.cpuUsage()
      ours = Math.min(ours, await timed(() => formatVerity(data, { hashPath: join(dir, 'ours'), salt, uuid, workers })))
      const used = process.cpuUsage(before)
      oursCpu = Math.min(oursCpu, (used.user + used.system) / 1e6)
    }
    return {
      mib, workers,
      oursSeconds: ours, veritysetupSeconds: theirs,
      oursMiBps: mib / ours, veritysetupMiBps: mib / theirs,
      ratio: theirs / ours,
      oursCpuSeconds: oursCpu,
      veritysetupCpuSeconds: theirsCpu,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mib = Number(process.argv[2] ?? 256)
  const r = await runVerityBench(mib)
  printTable('verity', [
    ['input', `${r.mib} MiB`, 'sha256, 4096/4096, salted, superblock; best of 5 interleaved, page cache warm'],
    ['veritysetup format', `${r.veritysetupSeconds.toFixed(3)} s`, `${r.veritysetupMiBps.toFixed(0)} MiB/s`],
    ['kataref formatVerity', `${r.oursSeconds.toFixed(3)} s`, `${r.oursMiBps.toFixed(0)} MiB/s, ${r.workers} worker threads`],
    ['throughput ratio', `${r.ratio.toFixed(2)}x`, 'kataref / veritysetup wall clock; goal ≥ 1.5x on an idle machine'],
    ['CPU veritysetup', `${r.veritysetupCpuSeconds.toFixed(2)} s`, 'user + system'],
    ['CPU kataref', `${r.oursCpuSeconds.toFixed(2)} s`, 'user + system, all threads of this process'],
    ['idle-machine estimate', `${((r.workers * r.veritysetupCpuSeconds) / r.oursCpuSeconds).toFixed(2)}x`, `${r.workers} cores × CPU-time ratio: what the ratio becomes without competing load`],
  ])
}
