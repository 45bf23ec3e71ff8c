// bench/boot: in one run, (a) a bare kernel + busybox initramfs boot to /init (the baseline) and
// (b) a full guest boot to agent-ready (grpc.Health/Check answered). Prints medians and their ratio.
// Run: npm run bench -- boot   (or: node --import tsx bench/boot/boot.bench.ts [rounds])
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildGuestImages, BARE_MARKER } from '../../images/guest/index.ts'
import { startQemuVm } from '../../impl/runtime/hypervisor/qemu/qemu.ts'
import { startVmWithAgent } from '../../impl/runtime/sandbox/vm-with-agent.ts'
import { median, medianMsRow, printTable } from '../report.ts'

async function bareBootMs(images: Awaited<ReturnType<typeof buildGuestImages>>): Promise<number> {
  const t0 = performance.now()
  const vm = await startQemuVm({ kernel: images.kernel, initrd: images.bareInitramfs, noReboot: true })
  try {
    for (;;) {
      const text = await readFile(vm.consoleLogPath, 'utf8').catch(() => '')
      if (text.includes(BARE_MARKER)) return performance.now() - t0
      if (vm.hasExited) throw new Error(`bare guest exited without ${BARE_MARKER}:\n${vm.consoleTail(20)}`)
      await sleep(10)
    }
  } finally {
    await vm.stop()
  }
}

async function agentReadyMs(images: Awaited<ReturnType<typeof buildGuestImages>>): Promise<number> {
  const { vm, agent, readyMs } = await startVmWithAgent({ kernel: images.kernel, initrd: images.initramfs, rootfs: images.rootfs })
  agent.close()
  await vm.stop()
  return readyMs
}

export async function main(rounds = 3): Promise<void> {
  const images = await buildGuestImages()
  const bare: number[] = []
  const full: number[] = []
  // Interleave so both see the same machine load.
  for (let i = 0; i < rounds; i++) {
    bare.push(await bareBootMs(images))
    full.push(await agentReadyMs(images))
  }
  printTable('boot', [
    medianMsRow('bare kernel+busybox to /init (baseline)', bare),
    medianMsRow('full guest to agent-ready', full),
    ['ratio agent-ready / bare', (median(full) / median(bare)).toFixed(2), `${rounds} rounds, medians`],
  ])
}

if (import.meta.url === `file://${process.argv[1]}`) await main(Number(process.argv[2] ?? 3))
