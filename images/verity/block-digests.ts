// Digests of a run of equal-size blocks read from a file: the bulk of the work when building or
// checking a hash tree (level 0 covers every data block). Large inputs are split across worker
// threads writing into one SharedArrayBuffer, so no digest is copied between threads.
import { open } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import * as fs from 'node:fs'
import * as crypto from 'node:crypto'
import { KatarefError, InvalidInputError, Code } from '../../impl/types/errors.ts'
import type { VerityAlgorithm, VerityHashType } from './params.ts'

export interface DigestJob {
  path: string
  /** Byte offset of block 0 in the file. */
  offset: number
  blockSize: number
  algorithm: VerityAlgorithm
  hashType: VerityHashType
  salt: Uint8Array
  digestSize: number
}

/** Where level-0 digests go when written straight into hash blocks. */
export interface DigestPlacement {
  /** Buffer holding the level-0 hash blocks, from `byteOffset`. */
  into: SharedArrayBuffer
  byteOffset: number
  hashBlockSize: number
  hashPerBlock: number
  /** Bytes between digests in a hash block. */
  stride: number
}

// One source of truth for the hashing loop, in plain JavaScript: worker threads are started from
// this text with `eval`, because a worker cannot load a .ts module under plain Node. The main
// thread runs the very same text for inputs too small to be worth a thread.
// Args: fs, crypto, job, fd, first block, count, output Uint8Array, index of the first block in
// the output. Digest k goes to k × digestSize, or, with job.place, straight to its slot in a hash
// block (saves the main thread a packing pass over every level-0 digest).
const DIGEST_LOOP_JS = `
  const { blockSize, algorithm, hashType, offset, digestSize } = job;
  const place = job.place;
  const salt = Buffer.from(job.salt);
  const perRead = Math.max(1, Math.floor((4 << 20) / blockSize));
  const buf = Buffer.allocUnsafe(perRead * blockSize);
  // Version 1 hashes salt||block, version 0 block||salt: build that message in one scratch buffer
  // so each block costs one one-shot hash call.
  const msg = Buffer.alloc(blockSize + salt.length);
  const blockAt = hashType === 1 ? salt.length : 0;
  salt.copy(msg, hashType === 1 ? 0 : blockSize);
  let done = 0;
  while (done < count) {
    const n = Math.min(perRead, count - done);
    const want = n * blockSize;
    let got = 0;
    while (got < want) {
      const r = fs.readSync(fd, buf, got, want - got, offset + (first + done) * blockSize + got);
      if (r === 0) throw new Error('short read at block ' + (first + done + Math.floor(got / blockSize)));
      got += r;
    }
    for (let i = 0; i < n; i++) {
      buf.copy(msg, blockAt, i * blockSize, (i + 1) * blockSize);
      const d = crypto.hash ? crypto.hash(algorithm, msg, 'buffer') : crypto.createHash(algorithm).update(msg).digest();
      const k = base + done + i;
      out.set(d, place ? Math.floor(k / place.hashPerBlock) * place.hashBlockSize + (k % place.hashPerBlock) * place.stride : k * digestSize);
    }
    done += n;
  }
`
const digestLoop = new Function('fs', 'crypto', 'job', 'fd', 'first', 'count', 'out', 'base', DIGEST_LOOP_JS) as (
  fsMod: typeof fs, cryptoMod: typeof crypto, job: DigestJob, fd: number, first: number, count: number, out: Uint8Array, base: number,
) => void

// Workers stay alive between calls (unref'd while idle so they never hold the process open):
// thread start-up is a noticeable share of hashing a few hundred MiB.
const WORKER_JS = `
  const { parentPort, workerData } = require('node:worker_threads');
  const fs = require('node:fs');
  const crypto = require('node:crypto');
  const loop = new Function('fs', 'crypto', 'job', 'fd', 'first', 'count', 'out', 'base', workerData.loop);
  parentPort.on('message', ({ id, job, first, count, shared, byteOffset, base }) => {
    let fd;
    try {
      fd = fs.openSync(job.path, 'r');
      loop(fs, crypto, job, fd, first, count, new Uint8Array(shared, byteOffset), base);
      parentPort.postMessage({ id });
    } catch (e) {
      parentPort.postMessage({ id, error: e && e.message ? e.message : String(e) });
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  });
`

interface PoolWorker { worker: Worker; busy: boolean; pending: Map<number, { resolve: () => void; reject: (e: Error) => void }> }
const pool: PoolWorker[] = []
let nextJobId = 0

function spawnPoolWorker(): PoolWorker {
  const pw: PoolWorker = { worker: new Worker(WORKER_JS, { eval: true, workerData: { loop: DIGEST_LOOP_JS } }), busy: false, pending: new Map() }
  pw.worker.unref()
  const fail = (e: Error) => {
    const i = pool.indexOf(pw)
    if (i >= 0) pool.splice(i, 1)
    for (const p of pw.pending.values()) p.reject(e)
    pw.pending.clear()
  }
  pw.worker.on('message', (m: { id: number; error?: string }) => {
    const p = pw.pending.get(m.id)
    pw.pending.delete(m.id)
    pw.busy = false
    pw.worker.unref()
    if (!p) return
    if (m.error !== undefined) p.reject(new Error(m.error))
    else p.resolve()
  })
  pw.worker.on('error', fail)
  pw.worker.on('exit', (code) => fail(new Error(`digest worker exited with code ${code}`)))
  pool.push(pw)
  return pw
}

function runWorker(job: DigestJob, first: number, count: number, shared: SharedArrayBuffer, byteOffset: number, base: number): Promise<void> {
  const pw = pool.find((w) => !w.busy) ?? spawnPoolWorker()
  pw.busy = true
  pw.worker.ref()
  const id = nextJobId++
  return new Promise((resolve, reject) => {
    pw.pending.set(id, { resolve, reject })
    pw.worker.postMessage({ id, job, first, count, shared, byteOffset, base })
  })
}

/** Below this many bytes the thread start-up costs more than it saves. */
const PARALLEL_THRESHOLD = 16 << 20

export function defaultWorkerCount(): number {
  return Math.min(availableParallelism(), 8)
}

/**
 * Digests of blocks [first, first+count) of `job.path`: concatenated (count × digestSize bytes), or
 * with `placement` written into hash-block slots of `placement.into` (then that view is returned).
 * `workers` = 0 or 1 hashes on the calling thread.
 */
export async function digestBlocks(job: DigestJob, first: number, count: number, workers = defaultWorkerCount(), placement?: DigestPlacement): Promise<Uint8Array> {
  const shared = placement?.into ?? new SharedArrayBuffer(count * job.digestSize)
  const byteOffset = placement?.byteOffset ?? 0
  const out = new Uint8Array(shared, byteOffset)
  const place = placement ? { hashBlockSize: placement.hashBlockSize, hashPerBlock: placement.hashPerBlock, stride: placement.stride } : null
  const n = count * job.blockSize < PARALLEL_THRESHOLD ? 1 : Math.max(1, Math.min(workers, count))
  try {
    if (n <= 1) {
      const fh = await open(job.path, 'r')
      try {
        digestLoop(fs, crypto, { ...job, salt: Buffer.from(job.salt), place } as DigestJob, fh.fd, first, count, out, 0)
      } finally {
        await fh.close()
      }
      return out
    }
    const per = Math.ceil(count / n)
    const runs: Promise<void>[] = []
    for (let s = 0; s < count; s += per) {
      const c = Math.min(per, count - s)
      runs.push(runWorker({ ...job, salt: Uint8Array.from(job.salt), place } as DigestJob, first + s, c, shared, byteOffset, s))
    }
    await Promise.all(runs)
    return out
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    if (/short read/.test(msg)) throw new InvalidInputError(`dm-verity data ${job.path}`, `file ends before the declared blocks (${msg})`, { path: job.path })
    if (e instanceof KatarefError) throw e
    throw new KatarefError(`hashing blocks of ${job.path}: ${msg}`, Code.INTERNAL, { path: job.path }, { cause: e })
  }
}
