// DAN devices → typed endpoint descriptions the QEMU driver turns into `-netdev tap` /
// vhost-user netdevs (runtime-rs virt_container sandbox.rs + network/dan.rs). Endpoints are named
// eth<position>; queue pairs = queue_num, else max(network_queues, 1); queue size = queue_size,
// else 256.
import type { DanConfig, DanDevice } from './dan-config.ts'

export const DEFAULT_DAN_QUEUE_SIZE = 256

interface EndpointCommon {
  /** Guest interface name: `eth<position in devices>`. */
  endpointName: string
  /** `name` from the file (host-side device name). */
  name: string
  mac: string
  /** Queue pairs (QEMU `queues`; multiqueue when > 1). */
  queues: number
  queueSize: number
  mtu: number
  /** Run attach/detach inside this netns when set. */
  netns?: string
  device: DanDevice
}

/** A QEMU tap netdev over an existing host tap device. */
export interface TapNetdevDescription extends EndpointCommon {
  kind: 'tap'
  ifname: string
}

export interface VhostUserNetdevDescription extends EndpointCommon {
  kind: 'vhost-user'
  socketPath: string
}

export type DanEndpointDescription = TapNetdevDescription | VhostUserNetdevDescription

export function danEndpoints(config: DanConfig, networkQueues: number): DanEndpointDescription[] {
  return config.devices.map((d, i) => {
    const common: EndpointCommon = {
      endpointName: `eth${i}`,
      name: d.name,
      mac: d.guestMac,
      queues: d.device.queueNum !== 0 ? d.device.queueNum : Math.max(networkQueues, 1),
      queueSize: d.device.queueSize !== 0 ? d.device.queueSize : DEFAULT_DAN_QUEUE_SIZE,
      mtu: d.networkInfo.interface.mtu,
      ...(config.netns !== undefined ? { netns: config.netns } : {}),
      device: d,
    }
    return d.device.type === 'host-tap'
      ? { kind: 'tap', ifname: d.device.tapName, ...common }
      : { kind: 'vhost-user', socketPath: d.device.path, ...common }
  })
}

/** Only the host-tap devices, as QEMU tap netdevs. */
export function danTapNetdevs(config: DanConfig, networkQueues: number): TapNetdevDescription[] {
  return danEndpoints(config, networkQueues).filter((e): e is TapNetdevDescription => e.kind === 'tap')
}
