// bench/mount: in one guest, 8 dm-verity EROFS layers of one GPT+VMDK disk set up concurrently (the
// default, upstream's join-all) vs one after another (debug storage option
// X-kataref.layer-concurrency=1, same code path), each with the expensive DM ioctls on libuv's threadpool
// (default) and inline on the agent's thread (X-kataref.blocking-threads=off), interleaved in one run. Figures come from the agent's own log line
// ("multi-layer erofs rootfs mounted": layersMs = the concurrent section, totalMs = the whole group),
// plus the CreateContainer round trip seen from the host. Prints medians and the ratio; never asserts.
// Run: npm run bench -- mount [rounds]   (or: node --import tsx bench/mount/mount.bench.ts [rounds])
import { loadavg } from 'node:os'
import { bootGuest } from '../../harness/boot-guest.ts'
import { agentLogLines, buildLayerDisk, findGuestDisk, multiLayerStorages, rootfsOci } from '../../harness/guest-disks.ts'
import { guestRootfsMountPoint } from '../../impl/runtime/resource/rootfs/storage.ts'
import { listRounded, median, medianMsRow, printTable } from '../report.ts'

const LAYERS = 8
const T = { timeoutMs: 120_000 }

export async function main(rounds = 5): Promise<void> {
  const disk = await buildLayerDisk(Array.from({ length: LAYERS }, (_, i) => ({ [`l${i}.txt`]: `layer ${i}\n`, [`blob${i}.bin`]: { content: Buffer.alloc(64 << 10, i) } })), { verity: true })
  try {
    const guest = await bootGuest({ disks: [disk.disk], kernelParams: ['kataref.agent_failpoints=1'] })
    try {
      const { pciPath } = await findGuestDisk(guest, disk.serial)
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-bench-mount' }, T)
      type Mode = 'concurrent' | 'sequential' | 'concurrent-inline' | 'sequential-inline'
      const MODES: Mode[] = ['concurrent', 'sequential', 'concurrent-inline', 'sequential-inline']
      interface Run { layers: number[]; total: number[]; rpc: number[]; verity: number[]; mount: number[] }
      const runs = Object.fromEntries(MODES.map((m) => [m, { layers: [], total: [], rpc: [], verity: [], mount: [] }])) as unknown as Record<Mode, Run>
      const loadBefore = loadavg()[0]!
      let n = 0
      for (let r = 0; r < rounds + 1; r++) {
        // Alternate which goes first; round 0 is a warm-up (page cache, koffi, first mknod) and not counted.
        const order: Mode[] = r % 2 ? [...MODES].reverse() : MODES
        for (const mode of order) {
          const cid = `bench-${++n}`
          const storages = multiLayerStorages(disk.summary, { cid, pciPath, extra: (i) => (i !== 0 ? [] : [
            ...(mode.startsWith('sequential') ? ['X-kataref.layer-concurrency=1'] : []),
            ...(mode.endsWith('-inline') ? ['X-kataref.blocking-threads=off'] : []),
          ]) })
          const t0 = performance.now()
          await guest.agent.agent.createContainer({ containerId: cid, storages, OCI: rootfsOci(guestRootfsMountPoint(cid)) }, T)
          const rpc = performance.now() - t0
          // One read of the console per round: this container's group line and its per-layer phases
          // (layer-mount.ts: dm-verity create…mknod, and the EROFS mount through it).
          const logged = (await agentLogLines(guest, /^(multi-layer erofs rootfs mounted|mounted EROFS layer)$/)).filter((l) => l.cid === cid)
          const line = logged.findLast((l) => l.msg === 'multi-layer erofs rootfs mounted')!
          const perLayer = logged.filter((l) => l.msg === 'mounted EROFS layer')
          const sum = (k: string) => perLayer.reduce((a, l) => a + Number(l[k] ?? 0), 0)
          await guest.agent.agent.removeContainer({ containerId: cid }, T)
          if (r === 0) continue
          runs[mode].layers.push(Number(line.layersMs))
          runs[mode].total.push(Number(line.totalMs))
          runs[mode].rpc.push(rpc)
          runs[mode].verity.push(sum('verityMs'))
          runs[mode].mount.push(sum('mountMs'))
        }
      }
      await guest.agent.agent.destroySandbox({}, T)
      // The agent's memory after the runs, threadpool included (witness: the debug shell).
      const rss = (await guest.debug.run('grep VmRSS /proc/$(pidof node)/status')).stdout.replace(/\s+/g, ' ').trim()
      const threads = (await guest.debug.run('ls /proc/$(pidof node)/task | wc -l')).stdout.trim()
      const c = runs.concurrent
      const s = runs.sequential
      const ci = runs['concurrent-inline']
      const si = runs['sequential-inline']
      // Both modes of a round run back to back, so their ratio shares that moment's host load.
      const perRound = c.layers.map((x, i) => x / s.layers[i]!)
      printTable('mount', [
        medianMsRow(`${LAYERS} verity layers concurrently: layer section`, c.layers),
        medianMsRow(`${LAYERS} verity layers one after another: layer section`, s.layers),
        ['ratio concurrent / sequential (layer section)', (median(c.layers) / median(s.layers)).toFixed(2), `goal <= 0.6; ${rounds} rounds, ratio of medians`],
        ['  same, median of per-round ratios', median(perRound).toFixed(2), listRounded(perRound.map((r) => 100 * r)) + ' (%)'],
        medianMsRow('whole group (incl. overlay), concurrent', c.total),
        medianMsRow('whole group (incl. overlay), sequential', s.total),
        medianMsRow('CreateContainer round trip, concurrent', c.rpc),
        medianMsRow('CreateContainer round trip, sequential', s.rpc),
        medianMsRow('syscalls inline: concurrent', ci.layers),
        medianMsRow('syscalls inline: sequential', si.layers),
        ['ratio concurrent / sequential, inline', (median(ci.layers) / median(si.layers)).toFixed(2), 'KATAREF_BLOCKING_SYSCALLS=inline'],
        ['sum over layers of dm-verity create…mknod: concurrent / sequential', `${median(c.verity).toFixed(0)} / ${median(s.verity).toFixed(0)} ms`, 'per-layer wall time; concurrent > sequential = contention'],
        ['sum over layers of the EROFS mount: concurrent / sequential', `${median(c.mount).toFixed(0)} / ${median(s.mount).toFixed(0)} ms`, 'the mount reads verity-checked metadata'],
        ['agent after the runs', rss, `${threads} threads (main, V8, libuv threadpool)`],
        ['host load average (1 min) before / after', `${loadBefore.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`, '2 guest vCPUs share the host cores: host load pushes the ratio towards 1'],
        ['guest', `${guest.vm.accel}`, `kernel ${guest.kernelVersion}, ${process.env.KATAREF_ACCEL ?? 'default'} accel`],
      ])
    } finally {
      await guest.stop()
    }
  } finally {
    // (buildLayerDisk also removes it on SIGINT/SIGTERM, like the VM's own last-chance cleanup)
    await disk.remove()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main(Number(process.argv[2] ?? 5))
