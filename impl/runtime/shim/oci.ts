// OCI runtime spec (config.json, JSON) → the agent's protobuf Spec (protocols.md §2.5), with what the
// Kata runtime strips before CreateContainer: hooks, seccomp (unless the agent supports it),
// Resources.Devices/Pids/BlockIO/Network, CPU.Cpus/Mems, namespace paths and the network, cgroup and
// time namespaces. Root.Path is rewritten to the guest rootfs path.
import type { MessageInitShape } from '@bufbuild/protobuf'
import type { ProcessSchema, SpecSchema } from '../../gen/oci_pb.ts'

/** The parts of an OCI runtime spec (JSON) this shim reads. Unknown keys are ignored. */
export interface OciSpecJson {
  ociVersion?: string
  process?: OciProcessJson
  root?: { path?: string; readonly?: boolean }
  hostname?: string
  mounts?: { destination?: string; source?: string; type?: string; options?: string[] }[]
  annotations?: Record<string, string>
  linux?: {
    uidMappings?: IdMap[]
    gidMappings?: IdMap[]
    sysctl?: Record<string, string>
    resources?: {
      memory?: { limit?: number; reservation?: number; swap?: number; kernel?: number; kernelTCP?: number; swappiness?: number; disableOOMKiller?: boolean }
      cpu?: { shares?: number; quota?: number; period?: number; realtimeRuntime?: number; realtimePeriod?: number; cpus?: string; mems?: string }
      hugepageLimits?: { pageSize?: string; limit?: number }[]
    }
    cgroupsPath?: string
    namespaces?: { type?: string; path?: string }[]
    devices?: { path?: string; type?: string; major?: number; minor?: number; fileMode?: number; uid?: number; gid?: number }[]
    rootfsPropagation?: string
    maskedPaths?: string[]
    readonlyPaths?: string[]
    mountLabel?: string
  }
}

interface IdMap {
  containerID?: number
  hostID?: number
  size?: number
}

export interface OciProcessJson {
  terminal?: boolean
  consoleSize?: { height?: number; width?: number }
  user?: { uid?: number; gid?: number; additionalGids?: number[]; username?: string }
  args?: string[]
  env?: string[]
  cwd?: string
  capabilities?: { bounding?: string[]; effective?: string[]; inheritable?: string[]; permitted?: string[]; ambient?: string[] }
  rlimits?: { type?: string; hard?: number; soft?: number }[]
  noNewPrivileges?: boolean
  apparmorProfile?: string
  oomScoreAdj?: number
  selinuxLabel?: string
}

/** Namespaces Kata never hands to the agent (the guest has its own network; cgroup/time stay the agent's). */
const DROPPED_NAMESPACES = new Set(['network', 'cgroup', 'time'])

const big = (n: number | undefined): bigint => BigInt(Math.trunc(n ?? 0))

export function ociProcessToProto(p: OciProcessJson): MessageInitShape<typeof ProcessSchema> {
  return {
    Terminal: p.terminal ?? false,
    ...(p.consoleSize ? { ConsoleSize: { Height: p.consoleSize.height ?? 0, Width: p.consoleSize.width ?? 0 } } : {}),
    User: { UID: p.user?.uid ?? 0, GID: p.user?.gid ?? 0, AdditionalGids: p.user?.additionalGids ?? [], Username: p.user?.username ?? '' },
    Args: p.args ?? [],
    Env: p.env ?? [],
    Cwd: p.cwd ?? '/',
    ...(p.capabilities
      ? {
          Capabilities: {
            Bounding: p.capabilities.bounding ?? [],
            Effective: p.capabilities.effective ?? [],
            Inheritable: p.capabilities.inheritable ?? [],
            Permitted: p.capabilities.permitted ?? [],
            Ambient: p.capabilities.ambient ?? [],
          },
        }
      : {}),
    Rlimits: (p.rlimits ?? []).map((r) => ({ Type: r.type ?? '', Hard: big(r.hard), Soft: big(r.soft) })),
    NoNewPrivileges: p.noNewPrivileges ?? false,
    ApparmorProfile: p.apparmorProfile ?? '',
    OOMScoreAdj: big(p.oomScoreAdj),
    SelinuxLabel: p.selinuxLabel ?? '',
  }
}

/** The guest path of a container's rootfs under the shared dir. */
export function guestRootfsPath(containerId: string): string {
  return `/run/kata-containers/shared/containers/${containerId}/rootfs`
}

export function ociSpecToProto(spec: OciSpecJson, guestRootfs: string): MessageInitShape<typeof SpecSchema> {
  const l = spec.linux
  const r = l?.resources
  return {
    Version: spec.ociVersion ?? '',
    ...(spec.process ? { Process: ociProcessToProto(spec.process) } : {}),
    Root: { Path: guestRootfs, Readonly: spec.root?.readonly ?? false },
    Hostname: spec.hostname ?? '',
    Mounts: (spec.mounts ?? []).map((m) => ({ destination: m.destination ?? '', source: m.source ?? '', type: m.type ?? '', options: m.options ?? [] })),
    Annotations: { ...(spec.annotations ?? {}) },
    ...(l
      ? {
          Linux: {
            UIDMappings: (l.uidMappings ?? []).map((m) => ({ HostID: m.hostID ?? 0, ContainerID: m.containerID ?? 0, Size: m.size ?? 0 })),
            GIDMappings: (l.gidMappings ?? []).map((m) => ({ HostID: m.hostID ?? 0, ContainerID: m.containerID ?? 0, Size: m.size ?? 0 })),
            Sysctl: { ...(l.sysctl ?? {}) },
            ...(r
              ? {
                  Resources: {
                    ...(r.memory
                      ? {
                          Memory: {
                            Limit: big(r.memory.limit), Reservation: big(r.memory.reservation), Swap: big(r.memory.swap), Kernel: big(r.memory.kernel),
                            KernelTCP: big(r.memory.kernelTCP), Swappiness: big(r.memory.swappiness), DisableOOMKiller: r.memory.disableOOMKiller ?? false,
                          },
                        }
                      : {}),
                    ...(r.cpu
                      ? {
                          CPU: {
                            Shares: big(r.cpu.shares), Quota: big(r.cpu.quota), Period: big(r.cpu.period),
                            RealtimeRuntime: big(r.cpu.realtimeRuntime), RealtimePeriod: big(r.cpu.realtimePeriod),
                          },
                        }
                      : {}),
                    HugepageLimits: (r.hugepageLimits ?? []).map((h) => ({ Pagesize: h.pageSize ?? '', Limit: big(h.limit) })),
                  },
                }
              : {}),
            CgroupsPath: l.cgroupsPath ?? '',
            Namespaces: (l.namespaces ?? []).filter((n) => !DROPPED_NAMESPACES.has(n.type ?? '')).map((n) => ({ Type: n.type ?? '', Path: '' })),
            Devices: (l.devices ?? []).map((d) => ({
              Path: d.path ?? '', Type: d.type ?? '', Major: big(d.major), Minor: big(d.minor), FileMode: d.fileMode ?? 0, UID: d.uid ?? 0, GID: d.gid ?? 0,
            })),
            RootfsPropagation: l.rootfsPropagation ?? '',
            MaskedPaths: l.maskedPaths ?? [],
            ReadonlyPaths: l.readonlyPaths ?? [],
            MountLabel: l.mountLabel ?? '',
          },
        }
      : {}),
  }
}
