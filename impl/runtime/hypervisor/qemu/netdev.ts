// QEMU arguments for DAN host-tap endpoints (spec §9): `-netdev tap` over an existing host tap
// device (no scripts) and a virtio-net-pci device with the file's MAC; the MTU reaches the guest
// driver through the virtio-net MTU feature (`host_mtu`), so the interface comes up with it.
import { InvalidInputError } from '../../../types/errors.ts'
import type { TapNetdevDescription } from '../../network/dan/index.ts'

const SAFE = /^[A-Za-z0-9_.:-]+$/

function checked(what: string, v: string): string {
  if (!SAFE.test(v)) throw new InvalidInputError(what, `${JSON.stringify(v)} cannot go into a QEMU option value`)
  return v
}

export function tapNetdevArgs(taps: readonly TapNetdevDescription[]): string[] {
  const args: string[] = []
  for (const t of taps) {
    const id = checked('endpoint name', t.endpointName)
    const mq = t.queues > 1
    args.push('-netdev', `tap,id=${id},ifname=${checked('tap name', t.ifname)},script=no,downscript=no${mq ? `,queues=${t.queues}` : ''}`)
    args.push('-device', `virtio-net-pci,netdev=${id},id=net-${id},mac=${checked('MAC', t.mac)},host_mtu=${t.mtu}${mq ? `,mq=on,vectors=${2 * t.queues + 2}` : ''}`)
  }
  return args
}
