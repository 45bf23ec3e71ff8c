import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfiguration, parseConfiguration } from '../../../types/config/index.ts'
import {
  danConfigPath, DanConfigError, danEndpoints, danTapNetdevs, loadDanConfig, parseDanConfig, randomGuestMac, sandboxNetworkPlan,
} from './index.ts'

const FILE = '/run/kata-containers/dans/abc.json'
const fixedRandom = () => new Uint8Array([0xff, 0x11, 0x22, 0x33, 0x44, 0x55])

const minimalTap = {
  devices: [{
    name: 'dan0',
    device: { type: 'host-tap', tap_name: 'tap0' },
    network_info: { interface: { ip_addresses: ['10.0.0.2/24'] } },
  }],
}

function danError(text: string): DanConfigError {
  try {
    parseDanConfig(text, FILE)
  } catch (e) {
    expect(e).toBeInstanceOf(DanConfigError)
    return e as DanConfigError
  }
  throw new Error('expected DanConfigError')
}

describe('§9 dan_conf and the file path (§14.17)', () => {
  it('[runtime] dan_conf: serde default "" ; shipped /run/kata-containers/dans', () => {
    expect(parseConfiguration('', 'c.toml', { cpus: 2, memoryMiB: 4096 }).config.runtime.danConf).toBe('')
    const path = fileURLToPath(new URL('../../../../config/configuration-kataref.toml', import.meta.url))
    expect(loadConfiguration({ path, host: { cpus: 2, memoryMiB: 4096 } }).config.runtime.danConf).toBe('/run/kata-containers/dans')
  })
  it('dan_conf "/run/kata-containers/dans", sandbox abc → /run/kata-containers/dans/abc.json', () => {
    expect(danConfigPath('/run/kata-containers/dans', 'abc')).toBe('/run/kata-containers/dans/abc.json')
  })
  it('upstream-gap 10: dan_conf absent ("") → <sandbox-id>.json relative to the working dir', () => {
    expect(danConfigPath('', 'abc')).toBe('abc.json')
  })
})

describe('§9 parsing and defaults', () => {
  it('minimal host-tap device: defaults applied', () => {
    const c = parseDanConfig(JSON.stringify(minimalTap), FILE, { random: fixedRandom })
    expect(c).toEqual({
      devices: [{
        name: 'dan0',
        guestMac: 'fe:11:22:33:44:55',
        device: { type: 'host-tap', tapName: 'tap0', queueNum: 0, queueSize: 0 },
        networkInfo: { interface: { ipAddresses: ['10.0.0.2/24'], mtu: 1500, ntype: '', flags: 0 }, routes: [], neighbors: [] },
      }],
    })
  })
  it('random guest MAC is locally administered unicast', () => {
    for (let i = 0; i < 50; i++) {
      const mac = randomGuestMac()
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
      const b0 = parseInt(mac.slice(0, 2), 16)
      expect(b0 & 0x01).toBe(0)
      expect(b0 & 0x02).toBe(2)
    }
    expect(randomGuestMac(() => new Uint8Array([0x01, 0, 0, 0, 0, 0]))).toBe('02:00:00:00:00:00')
  })
  it('full file: netns, vhost-user, routes and neighbours with defaults', () => {
    const c = parseDanConfig(JSON.stringify({
      netns: '/var/run/netns/dan',
      devices: [
        { name: 'a', guest_mac: '02:00:00:00:00:01', device: { type: 'host-tap', tap_name: 'tap1', queue_num: 4, queue_size: 1024 },
          network_info: { interface: { ip_addresses: ['fd00::2/64'], mtu: 9000, ntype: 'tuntap', flags: 4099 },
            routes: [{ dest: '0.0.0.0/0', gateway: '10.0.0.1' }], neighbors: [{ ip_address: '10.0.0.1', hardware_addr: '02:00:00:00:00:fe' }, {}] } },
        { name: 'b', guest_mac: '02:00:00:00:00:02', device: { type: 'vhost-user', path: '/tmp/vhu.sock' }, network_info: { interface: { ip_addresses: [] } } },
      ],
    }), FILE)
    expect(c.netns).toBe('/var/run/netns/dan')
    expect(c.devices[0]!.networkInfo.routes).toEqual([{ dest: '0.0.0.0/0', gateway: '10.0.0.1', source: '', scope: 0, flags: 0, mtu: 0 }])
    expect(c.devices[0]!.networkInfo.neighbors).toEqual([
      { ipAddress: '10.0.0.1', hardwareAddr: '02:00:00:00:00:fe', state: 0, flags: 0 },
      { hardwareAddr: '', state: 0, flags: 0 },
    ])
    expect(c.devices[1]!.device).toEqual({ type: 'vhost-user', path: '/tmp/vhu.sock', queueNum: 0, queueSize: 0 })

    const eps = danEndpoints(c, 2)
    expect(eps.map((e) => [e.endpointName, e.kind, e.queues, e.queueSize, e.mtu, e.netns])).toEqual([
      ['eth0', 'tap', 4, 1024, 9000, '/var/run/netns/dan'],
      ['eth1', 'vhost-user', 2, 256, 1500, '/var/run/netns/dan'],
    ])
  })
})

describe('host-tap → QEMU tap netdev descriptions', () => {
  it('queue pairs = queue_num, else max(network_queues, 1); queue size = queue_size, else 256', () => {
    const c = parseDanConfig(JSON.stringify(minimalTap), FILE, { random: fixedRandom })
    const [tap] = danTapNetdevs(c, 0)
    expect(tap).toMatchObject({ kind: 'tap', endpointName: 'eth0', name: 'dan0', ifname: 'tap0', mac: 'fe:11:22:33:44:55', queues: 1, queueSize: 256, mtu: 1500 })
    expect(tap!.netns).toBeUndefined()
    expect(danTapNetdevs(c, 4)[0]!.queues).toBe(4)
  })
  it('vhost-user devices are not tap netdevs', () => {
    const c = parseDanConfig(JSON.stringify({ devices: [{ name: 'v', device: { type: 'vhost-user', path: '/s' }, network_info: { interface: { ip_addresses: [] } } }] }), FILE)
    expect(danTapNetdevs(c, 1)).toEqual([])
  })
})

describe('malformed files: error names file and field', () => {
  it.each([
    ['{', ': invalid JSON'],
    ['[]', 'upstream-gap 12'],
    ['{}', 'devices: expected array, got nothing (field missing)'],
    ['{"devices": [1]}', 'devices[0]: expected object'],
    ['{"devices": [{"device": {"type": "host-tap", "tap_name": "t"}, "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].name: expected string'],
    ['{"devices": [{"name": "a", "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].device: expected object'],
    ['{"devices": [{"name": "a", "device": {"type": "macvtap"}, "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].device.type: expected "host-tap" or "vhost-user", got "macvtap"'],
    ['{"devices": [{"name": "a", "device": {"type": "host-tap"}, "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].device.tap_name: expected string'],
    ['{"devices": [{"name": "a", "device": {"type": "vhost-user"}, "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].device.path: expected string'],
    ['{"devices": [{"name": "a", "device": {"type": "host-tap", "tap_name": "t", "queue_num": -1}, "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].device.queue_num: expected integer'],
    ['{"devices": [{"name": "a", "guest_mac": "zz", "device": {"type": "host-tap", "tap_name": "t"}, "network_info": {"interface": {"ip_addresses": []}}}]}', 'devices[0].guest_mac: expected a MAC address'],
    ['{"devices": [{"name": "a", "device": {"type": "host-tap", "tap_name": "t"}}]}', 'devices[0].network_info: expected object'],
    ['{"devices": [{"name": "a", "device": {"type": "host-tap", "tap_name": "t"}, "network_info": {"interface": {"ip_addresses": ["10.0.0.2"]}}}]}', 'devices[0].network_info.interface.ip_addresses[0]: expected CIDR'],
    ['{"devices": [{"name": "a", "device": {"type": "host-tap", "tap_name": "t"}, "network_info": {"interface": {"ip_addresses": [], "mtu": "1500"}}}]}', 'devices[0].network_info.interface.mtu: expected integer'],
    ['{"devices": [{"name": "a", "device": {"type": "host-tap", "tap_name": "t"}, "network_info": {"interface": {"ip_addresses": []}, "routes": [{"dest": 1}]}}]}', 'devices[0].network_info.routes[0].dest: expected string'],
    ['{"netns": 5, "devices": []}', 'netns: expected string'],
  ])('%s', (text, fragment) => {
    const e = danError(text)
    expect(e.message).toContain(`DAN config ${FILE}: `)
    expect(e.message).toContain(fragment)
  })
})

describe('loading from dan_conf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kataref-dan-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'abc.json'), JSON.stringify(minimalTap))
  writeFileSync(join(dir, 'bad.json'), '{"devices": {}}')
  it('present → DAN plan: no netns, interfaces from the file, no rescans', () => {
    const plan = sandboxNetworkPlan({ danConf: dir }, 'abc', { random: fixedRandom })
    expect(plan.kind).toBe('dan')
    if (plan.kind !== 'dan') return
    expect(plan).toMatchObject({ path: join(dir, 'abc.json'), netns: 'none', rescanNetns: false })
    expect(plan.config.devices[0]!.device).toMatchObject({ tapName: 'tap0' })
  })
  it('absent → ordinary netns plan', () => {
    expect(loadDanConfig(dir, 'nope')).toBeUndefined()
    expect(sandboxNetworkPlan({ danConf: dir }, 'nope')).toEqual({ kind: 'netns' })
  })
  it('malformed file → error naming the real path', () => {
    expect(() => loadDanConfig(dir, 'bad')).toThrow(`DAN config ${join(dir, 'bad.json')}: devices: expected array, got object`)
  })
})
