import { describe, expect, it } from 'vitest'
import { danTapNetdevs, parseDanConfig } from '../../network/dan/index.ts'
import { tapNetdevArgs } from './netdev.ts'

const dan = (device: Record<string, unknown>, mtu?: number) =>
  parseDanConfig(JSON.stringify({
    devices: [{ name: 'dan0', guest_mac: '02:00:ca:fe:00:01', device, network_info: { interface: { ip_addresses: [], ...(mtu ? { mtu } : {}) } } }],
  }), '/d/x.json')

describe('DAN host-tap → QEMU -netdev tap + virtio-net-pci', () => {
  it('single queue: tap netdev without scripts, MAC and host_mtu on the device', () => {
    expect(tapNetdevArgs(danTapNetdevs(dan({ type: 'host-tap', tap_name: 'tap0' }, 1400), 0))).toEqual([
      '-netdev', 'tap,id=eth0,ifname=tap0,script=no,downscript=no',
      '-device', 'virtio-net-pci,netdev=eth0,id=net-eth0,mac=02:00:ca:fe:00:01,host_mtu=1400',
    ])
  })
  it('queue_num 4 → queues=4, mq=on, vectors=10; default MTU 1500', () => {
    expect(tapNetdevArgs(danTapNetdevs(dan({ type: 'host-tap', tap_name: 'tap0', queue_num: 4 }), 1))).toEqual([
      '-netdev', 'tap,id=eth0,ifname=tap0,script=no,downscript=no,queues=4',
      '-device', 'virtio-net-pci,netdev=eth0,id=net-eth0,mac=02:00:ca:fe:00:01,host_mtu=1500,mq=on,vectors=10',
    ])
  })
  it('a tap name with a comma is rejected (it would inject QEMU options)', () => {
    expect(() => tapNetdevArgs(danTapNetdevs(dan({ type: 'host-tap', tap_name: 'tap0,script=/x' }), 1))).toThrow(/tap name/)
  })
})
