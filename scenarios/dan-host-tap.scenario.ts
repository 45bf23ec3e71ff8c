// DAN host-tap end to end (runtime-hypervisor-config.md §9): a tap device created in the host
// namespace and named in `<dan_conf>/<sandbox-id>.json` is handed by the shim to QEMU as a tap
// netdev + virtio-net-pci device; the guest (virtio_net loaded) shows it with the file's MAC and MTU.
// Private containerd whose shims read a private configuration.toml (KATA_CONF_FILE) with its own dan_conf.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll } from 'vitest'
import { scenario, test, expect } from '../harness/scenario.ts'
import { IMAGE, RUNTIME, shimQemus, startContainerdWithBusybox, type PrivateContainerd } from './_support/containerd.ts'

const REPO_CONFIG = resolve(fileURLToPath(new URL('.', import.meta.url)), '../config/configuration-kataref.toml')
const TAP = 'krdan0'
const MAC = '02:00:ca:fe:00:2a'
const MTU = 1400

let dir: string
let cd: PrivateContainerd | undefined

const tapExists = () => readdirSync('/sys/class/net').includes(TAP)

scenario(
  {
    name: 'dan-host-tap',
    upstream: 'runtime-rs DAN (src/runtime-rs/crates/runtimes/virt_container/src/sandbox.rs, resource/src/network/dan.rs): host-tap device → QEMU tap netdev',
    requires: ['qemu', 'containerd', 'root'],
  },
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kataref-dan-'))
      const dans = join(dir, 'dans')
      mkdirSync(dans)
      const conf = join(dir, 'configuration.toml')
      writeFileSync(conf, readFileSync(REPO_CONFIG, 'utf8').replace(/^dan_conf = .*$/m, `dan_conf = "${dans}"`))
      if (tapExists()) execFileSync('ip', ['link', 'del', TAP])
      execFileSync('ip', ['tuntap', 'add', 'dev', TAP, 'mode', 'tap'])
      writeFileSync(join(dans, 'dan-test.json'), JSON.stringify({
        devices: [{
          name: 'dan0',
          guest_mac: MAC,
          device: { type: 'host-tap', tap_name: TAP },
          network_info: { interface: { ip_addresses: ['10.250.0.2/24'], mtu: MTU } },
        }],
      }))
      cd = await startContainerdWithBusybox(dir, { env: { KATA_CONF_FILE: conf } })
    })
    afterAll(async () => {
      await cd?.stop()
      if (tapExists()) execFileSync('ip', ['link', 'del', TAP])
      rmSync(dir, { recursive: true, force: true })
    })

    test(`host tap ${TAP} named in <dan_conf>/dan-test.json → the guest has an interface with MAC ${MAC} and MTU ${MTU}`, async () => {
      const r = await cd!.ctr(['run', '--runtime', RUNTIME, '--rm', IMAGE, 'dan-test', 'busybox', 'ip', '-o', 'link'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      // `2: eth0: <BROADCAST,MULTICAST> mtu 1400 qdisc noop qlen 1000\    link/ether 02:00:ca:fe:00:2a brd …`
      const links = r.stdout.trim().split('\n').map((l) => /^\d+: ([^:@]+)[^ ]*: .* mtu (\d+) .*link\/\w+ ([0-9a-f:]+)/.exec(l)).filter((m) => m !== null).map((m) => ({ name: m[1], mtu: Number(m[2]), mac: m[3] }))
      expect(links.filter((l) => l.mac === MAC), r.stdout).toEqual([{ name: 'eth0', mtu: MTU, mac: MAC }])
      const line = cd!.qemuStartLine('dan-test')
      expect(line).toContain(`tap,id=eth0,ifname=${TAP},script=no,downscript=no`)
      expect(shimQemus()).toEqual([])
      expect(tapExists()).toBe(true) // the tap is the host's: the shim does not delete it
    })
  },
)
