// OCI JSON → agent Spec conversion, the publish-binary fallback of the event forwarder, and the
// CopyFile walk used to put a bundle rootfs into the guest (against a recording agent).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, fromBinary } from '@bufbuild/protobuf'
import { AnySchema } from '@bufbuild/protobuf/wkt'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SpecSchema } from '../../gen/oci_pb.ts'
import { TaskExitSchema } from '../../gen/containerd/task-events_pb.ts'
import type { KataAgent } from '../agent/kata-agent.ts'
import { EventForwarder } from './events.ts'
import { guestRootfsPath, ociSpecToProto } from './oci.ts'
import { copyTree } from './vm-runtime.ts'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kataref-shim-unit-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('OCI spec → agent Spec', () => {
  it('ctr-like spec: root rewritten to the guest path, network/cgroup namespaces and namespace paths dropped, hooks and seccomp absent, cpu.shares kept', () => {
    const spec = {
      ociVersion: '1.0.2-dev',
      process: { user: { uid: 0, gid: 0 }, args: ['echo', 'hi'], env: ['PATH=/bin'], cwd: '/', rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true,
        capabilities: { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'] } },
      root: { path: 'rootfs' },
      hostname: 'h',
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid'] }],
      hooks: { prestart: [{ path: '/bin/true' }] },
      linux: {
        resources: { devices: [{ allow: false, access: 'rwm' }], cpu: { shares: 1024, cpus: '0-1' }, memory: { limit: 536870912 } },
        cgroupsPath: '/default/t',
        namespaces: [{ type: 'pid' }, { type: 'network', path: '/proc/1/ns/net' }, { type: 'mount' }, { type: 'cgroup' }, { type: 'uts', path: '/x' }],
        seccomp: { defaultAction: 'SCMP_ACT_ERRNO' },
        maskedPaths: ['/proc/kcore'],
      },
    }
    const msg = create(SpecSchema, ociSpecToProto(spec, guestRootfsPath('t')))
    expect(msg.Root?.Path).toBe('/run/kata-containers/shared/containers/t/rootfs')
    expect(msg.Process?.Args).toEqual(['echo', 'hi'])
    expect(msg.Process?.Rlimits[0]).toMatchObject({ Type: 'RLIMIT_NOFILE', Hard: 1024n, Soft: 1024n })
    expect(msg.Process?.Capabilities?.Bounding).toEqual(['CAP_CHOWN'])
    expect(msg.Linux?.Namespaces).toEqual([expect.objectContaining({ Type: 'pid', Path: '' }), expect.objectContaining({ Type: 'mount' }), expect.objectContaining({ Type: 'uts', Path: '' })])
    expect(msg.Linux?.Resources?.CPU?.Shares).toBe(1024n)
    expect(msg.Linux?.Resources?.CPU?.Cpus).toBe('')
    expect(msg.Linux?.Resources?.Memory?.Limit).toBe(536870912n)
    expect(msg.Linux?.Resources?.Devices).toEqual([])
    expect(msg.Linux?.Seccomp).toBeUndefined()
    expect(msg.Hooks).toBeUndefined()
    expect(msg.Linux?.CgroupsPath).toBe('/default/t')
    expect(msg.Mounts[0]).toMatchObject({ destination: '/proc', type: 'proc', options: ['nosuid'] })
  })
})

describe('EventForwarder fallback', () => {
  it('without TTRPC_ADDRESS runs `<publish-binary> --address A publish --topic T --namespace NS` with the Any on stdin', async () => {
    const bin = join(dir, 'fake-containerd')
    writeFileSync(bin, `#!/bin/sh\necho "$@" > ${dir}/args\ncat > ${dir}/stdin\n`)
    chmodSync(bin, 0o755)
    const fwd = new EventForwarder({ namespace: 'ns1', publishBinary: bin, address: '/run/c.sock' })
    fwd.publish('/tasks/exit', TaskExitSchema, { containerId: 'c', id: 'c', pid: 7, exitStatus: 3 })
    await fwd.flush()
    expect(readFileSync(join(dir, 'args'), 'utf8').trim()).toBe('--address /run/c.sock publish --topic /tasks/exit --namespace ns1')
    const any = fromBinary(AnySchema, readFileSync(join(dir, 'stdin')))
    expect(any.typeUrl).toBe('containerd.events.TaskExit')
    expect(fromBinary(TaskExitSchema, any.value)).toMatchObject({ containerId: 'c', pid: 7, exitStatus: 3 })
  })

  it('a failing publisher never throws to the caller', async () => {
    const fwd = new EventForwarder({ namespace: 'ns1', ttrpcAddress: join(dir, 'nothing.sock') })
    fwd.publish('/tasks/exit', TaskExitSchema, { containerId: 'c' })
    await expect(fwd.flush()).resolves.toBeUndefined()
  })
})

describe('copyTree (CopyFile walk)', () => {
  it('directories and symlinks in one call each, files in 1 MiB chunks with offsets, an empty file as one call; full st_mode sent', async () => {
    mkdirSync(join(dir, 'root', 'bin'), { recursive: true })
    const big = Buffer.alloc(1024 * 1024 + 10, 7)
    writeFileSync(join(dir, 'root', 'bin', 'busybox'), big, { mode: 0o755 })
    writeFileSync(join(dir, 'root', 'empty'), '')
    symlinkSync('busybox', join(dir, 'root', 'bin', 'sh'))
    const calls: { path: string; fileMode: number; fileSize: bigint; offset: bigint; len: number; data: string }[] = []
    const agent = {
      agent: {
        copyFile: async (r: { path: string; fileMode: number; fileSize: bigint; offset?: bigint; data?: Uint8Array }) => {
          calls.push({ path: r.path, fileMode: r.fileMode, fileSize: r.fileSize, offset: r.offset ?? 0n, len: r.data?.length ?? 0, data: r.data && r.data.length < 20 ? Buffer.from(r.data).toString() : '' })
          return {}
        },
      },
    } as unknown as KataAgent
    const n = await copyTree(agent, join(dir, 'root'), '/g/rootfs')
    expect(n).toBe(5)
    expect(calls.map((c) => [c.path, c.offset, c.len])).toEqual([
      ['/g/rootfs', 0n, 0],
      ['/g/rootfs/bin', 0n, 0],
      ['/g/rootfs/bin/busybox', 0n, 1024 * 1024],
      ['/g/rootfs/bin/busybox', 1048576n, 10],
      ['/g/rootfs/bin/sh', 0n, 7],
      ['/g/rootfs/empty', 0n, 0],
    ])
    expect(calls[0]!.fileMode & 0o170000).toBe(0o040000)
    expect(calls[2]!.fileMode).toBe(0o100755)
    expect(calls[2]!.fileSize).toBe(BigInt(big.length))
    expect(calls[4]!.fileMode & 0o170000).toBe(0o120000)
    expect(calls[4]!.data).toBe('busybox')
  })
})
