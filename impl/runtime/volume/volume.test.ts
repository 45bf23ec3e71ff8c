import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  COPY_FILE_CHUNK_SIZE, copyFileRequests, copyTreeRequests, DEFAULT_COPY_DIR_MODE, emptyDirMedium, emptyDirMountType, emptyDirVolume,
  guestPullRootfsMount, isEmptyDir, isEmptyDirGo, kataVirtualVolumeOption, type OciMount, parsePageSize, parseProcMounts,
  readCopyTree, rootfsMountsForContainer, S_IFDIR, S_IFLNK, S_IFREG, sharedFileGuestPath,
} from './index.ts'

const SHARED = '/run/kata-containers/shared/containers/'

describe('§10 force_guest_pull (§14.18)', () => {
  const rootfs = [{ type: 'overlay', source: 'overlay', target: '', options: ['lowerdir=/a', 'upperdir=/b', 'workdir=/c'] }]
  it('on: rootfs mounts replaced by exactly one mount with the guest-pull volume option, byte for byte', () => {
    const out = rootfsMountsForContainer(rootfs, ['force_guest_pull'])
    expect(out).toHaveLength(1)
    expect(out[0]!.options).toEqual(['io.katacontainers.volume=eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwifQ=='])
    expect(out[0]).toEqual(guestPullRootfsMount())
    expect(Buffer.from('eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwifQ==', 'base64').toString()).toBe('{"volume_type":"image_guest_pull"}')
  })
  it('off (or other features only): mounts pass through unchanged', () => {
    expect(rootfsMountsForContainer(rootfs, [])).toEqual(rootfs)
    expect(rootfsMountsForContainer(rootfs, ['force_guest_pull_typo'])).toEqual(rootfs)
    expect(rootfsMountsForContainer([], [])).toEqual([])
  })
  it('the Go boolean experimental_force_guest_pull is accepted as an alias', () => {
    expect(rootfsMountsForContainer(rootfs, { experimental: [], experimentalForceGuestPull: true })).toEqual([guestPullRootfsMount()])
    expect(rootfsMountsForContainer(rootfs, { experimental: [], experimentalForceGuestPull: false })).toEqual(rootfs)
  })
  it('only set fields are serialised', () => {
    expect(kataVirtualVolumeOption({ volume_type: 'image_guest_pull', source: '' })).toBe('io.katacontainers.volume=eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwifQ==')
  })
})

describe('CopyFile request construction (§4)', () => {
  const st = (mode: number) => ({ mode, uid: 1000, gid: 2000 })
  it('regular file: full st_mode, uid, gid, one request per 1 MiB chunk with offsets', () => {
    const data = new Uint8Array(2 * COPY_FILE_CHUNK_SIZE + 5).map((_, i) => i & 0xff)
    const reqs = copyFileRequests(`${SHARED}c1-0123456789abcdef-f`, { stat: st(S_IFREG | 0o644), data })
    expect(reqs.map((r) => [r.offset, r.data.length, r.fileSize])).toEqual([
      [0n, 1048576, 2097157n], [1048576n, 1048576, 2097157n], [2097152n, 5, 2097157n],
    ])
    for (const r of reqs) expect(r).toMatchObject({ path: `${SHARED}c1-0123456789abcdef-f`, fileMode: 0o100644, dirMode: 0o40750, uid: 1000, gid: 2000 })
    expect(Buffer.concat(reqs.map((r) => r.data))).toEqual(Buffer.from(data))
  })
  it('exactly 1 MiB → one chunk; empty file → a single request with no data', () => {
    expect(copyFileRequests(`${SHARED}x`, { stat: st(S_IFREG | 0o600), data: new Uint8Array(COPY_FILE_CHUNK_SIZE) })).toHaveLength(1)
    expect(copyFileRequests(`${SHARED}x`, { stat: st(S_IFREG | 0o600), data: new Uint8Array(0) })).toEqual([
      { path: `${SHARED}x`, fileSize: 0n, fileMode: 0o100600, dirMode: DEFAULT_COPY_DIR_MODE, uid: 1000, gid: 2000, offset: 0n, data: new Uint8Array(0) },
    ])
  })
  it('directory: a single request, no data, full mode incl. setgid/sticky', () => {
    expect(copyFileRequests(`${SHARED}d`, { stat: st(S_IFDIR | 0o3770) })).toEqual([
      { path: `${SHARED}d`, fileSize: 0n, fileMode: 0o43770, dirMode: 0o40750, uid: 1000, gid: 2000, offset: 0n, data: new Uint8Array(0) },
    ])
  })
  it('symlink: a single request, data = target bytes, file_size 0', () => {
    const [r] = copyFileRequests(`${SHARED}l`, { stat: st(S_IFLNK | 0o777), linkTarget: '../etc/x' })
    expect(r).toMatchObject({ fileMode: 0o120777, fileSize: 0n, offset: 0n })
    expect(Buffer.from(r!.data).toString()).toBe('../etc/x')
  })
  it('other file types → Unsupported file type; paths outside the shared dir or with .. → error', () => {
    expect(() => copyFileRequests(`${SHARED}p`, { stat: st(0o010644) })).toThrow(/Unsupported file type/)
    expect(() => copyFileRequests('/run/kata-containers/shared/containersX/f', { stat: st(S_IFREG | 0o644) })).toThrow(/is not under/)
    expect(() => copyFileRequests(SHARED, { stat: st(S_IFDIR | 0o755) })).toThrow(/is not under/)
    expect(() => copyFileRequests(`${SHARED}a/../../x`, { stat: st(S_IFREG | 0o644) })).toThrow(/'\.\.'/)
  })
  it('§36: host dir 0o40755 and file 0o100644 → requests carry the full modes, not bare type bits', () => {
    const reqs = copyTreeRequests(`${SHARED}t`, {
      name: 't', stat: st(S_IFDIR | 0o755), children: [{ name: 'f', stat: st(S_IFREG | 0o644), data: new Uint8Array([1]) }],
    })
    expect(reqs.map((r) => [r.path, r.fileMode])).toEqual([[`${SHARED}t`, 0o40755], [`${SHARED}t/f`, 0o100644]])
  })
  it('tree: breadth first; root dir_mode default, subdirs dir_mode = own st_mode', () => {
    const reqs = copyTreeRequests(`${SHARED}sandbox-0123456789abcdef-vol`, {
      name: 'vol', stat: st(S_IFDIR | 0o755), children: [
        { name: 'sub', stat: st(S_IFDIR | 0o2700), children: [{ name: 'deep', stat: st(S_IFREG | 0o600), data: new Uint8Array(3) }] },
        { name: 'a', stat: st(S_IFREG | 0o644), data: new Uint8Array(2) },
        { name: 'ln', stat: st(S_IFLNK | 0o777), linkTarget: 'a' },
      ],
    })
    expect(reqs.map((r) => [r.path.slice(SHARED.length), r.fileMode.toString(8), r.dirMode.toString(8)])).toEqual([
      ['sandbox-0123456789abcdef-vol', '40755', '40750'],
      ['sandbox-0123456789abcdef-vol/sub', '42700', '42700'],
      ['sandbox-0123456789abcdef-vol/a', '100644', '40750'],
      ['sandbox-0123456789abcdef-vol/ln', '120777', '40750'],
      ['sandbox-0123456789abcdef-vol/sub/deep', '100600', '40750'],
    ])
  })
  it('guest name: <shared dir><cid>-<16 hex>-<basename of destination>', () => {
    expect(sharedFileGuestPath('c1', '/etc/app/config.json', '0123456789abcdef')).toBe(`${SHARED}c1-0123456789abcdef-config.json`)
    expect(() => sharedFileGuestPath('c1', '/x', 'xyz')).toThrow(/16 lowercase hex/)
  })
  it('readCopyTree: lstat walk of a real directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kataref-copy-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    mkdirSync(join(dir, 'sub'))
    writeFileSync(join(dir, 'sub', 'f'), 'hello')
    chmodSync(join(dir, 'sub', 'f'), 0o640)
    symlinkSync('sub/f', join(dir, 'link'))
    const tree = readCopyTree(dir)
    const reqs = copyTreeRequests(`${SHARED}t`, tree)
    expect(reqs.map((r) => [r.path.slice(SHARED.length), r.fileMode & 0o170000, Buffer.from(r.data).toString()])).toEqual([
      ['t', S_IFDIR, ''], ['t/link', S_IFLNK, 'sub/f'], ['t/sub', S_IFDIR, ''], ['t/sub/f', S_IFREG, 'hello'],
    ])
    expect(reqs[3]!.fileMode & 0o7777).toBe(0o640)
  })
})

describe('emptyDir classification (§5)', () => {
  it('§37 runtime-rs path checks', () => {
    expect(isEmptyDir('/volumes/kubernetes.io~empty-dir/shm')).toBe(true)
    expect(isEmptyDir('/volumes/kubernetes.io~empty-dir-test/shm')).toBe(false)
    expect(isEmptyDir('/volumes/kubernetes.io~empty-dir')).toBe(false)
    expect(isEmptyDir('kubernetes.io~empty-dir')).toBe(false)
    expect(isEmptyDir('/volumes//kubernetes.io~empty-dir/./shm/')).toBe(true)
  })
  it('runtime-go splits the raw string: //, /./ or a trailing / make it false', () => {
    expect(isEmptyDirGo('/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/v')).toBe(true)
    expect(isEmptyDirGo('/volumes/kubernetes.io~empty-dir/v/')).toBe(false)
    expect(isEmptyDirGo('/volumes/kubernetes.io~empty-dir/./v')).toBe(false)
  })
  it('medium from /proc/mounts (exact mount point match; last entry wins; escapes decoded)', () => {
    const src = '/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/v'
    const mounts = parseProcMounts([
      'tmpfs /run tmpfs rw,nosuid 0 0',
      `tmpfs ${src} tmpfs rw,relatime 0 0`,
      `nodev ${src}2 hugetlbfs rw,pagesize=2M 0 0`,
      '/dev/sda1 /var/lib/with\\040space ext4 rw 0 0',
    ].join('\n'))
    expect(mounts[3]!.mountPoint).toBe('/var/lib/with space')
    expect(emptyDirMedium(src, mounts)).toBe('memory')
    expect(emptyDirMedium(`${src}2`, mounts)).toBe('hugepages')
    expect(emptyDirMedium(`${src}3`, mounts)).toBe('disk')
    expect(emptyDirMedium(src, mounts, { requireBindForTmpfs: true, ociType: 'rbind' })).toBe('disk')
    expect(emptyDirMedium(src, mounts, { requireBindForTmpfs: true, ociType: 'bind' })).toBe('memory')
  })
  it('page sizes', () => {
    expect(parsePageSize('2M')).toBe(2097152)
    expect(parsePageSize('1G')).toBe(1073741824)
    expect(parsePageSize('2MB')).toBe(2097152)
    expect(parsePageSize('x')).toBeUndefined()
  })
})

describe('§38 SetEphemeralStorageType decision table', () => {
  const ed: OciMount = { destination: '/cache', source: '/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/cache', type: 'bind', options: ['rbind'] }
  const other: OciMount = { ...ed, source: '/var/lib/data/cache' }
  it.each([
    ['tmpfs', ed, 'memory', true, 'shared-fs', 'ephemeral'],
    ['tmpfs', ed, 'memory', false, 'block-plain', 'ephemeral'],
    ['hugetlbfs', ed, 'hugepages', true, 'shared-fs', 'local'],
    ['hugetlbfs', ed, 'hugepages', false, 'block-encrypted', 'local'],
    ['disk', ed, 'disk', false, 'shared-fs', 'local'],
    ['disk', ed, 'disk', false, 'block-encrypted', 'bind'],
    ['disk', ed, 'disk', false, 'block-plain', 'bind'],
    ['disk (default)', ed, 'disk', true, 'shared-fs', 'bind'],
    ['disk', ed, 'disk', true, 'block-plain', 'bind'],
    ['not an emptyDir', other, 'memory', false, 'shared-fs', 'bind'],
  ] as const)('%s, disable_guest_empty_dir=%s… → %s', (_n, mount, medium, disable, mode, want) => {
    expect(emptyDirMountType(mount, medium, { disableGuestEmptyDir: disable, emptydirMode: mode })).toBe(want)
  })
})

describe('emptyDir storages sent for each mode', () => {
  const mount: OciMount = { destination: '/cache', source: '/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/cache', type: 'bind', options: ['rbind', 'rw'] }
  const base = { sandboxId: 'sb1', hostGid: 0, disableGuestEmptyDir: true, emptydirMode: 'shared-fs' }
  it('tmpfs emptyDir → ephemeral tmpfs storage, OCI source rewritten, fsgid only for non-zero gid', () => {
    expect(emptyDirVolume(mount, { ...base, medium: 'memory' })).toEqual({
      kind: 'ephemeral',
      mount: { ...mount, source: '/run/kata-containers/sandbox/ephemeral/cache', type: 'bind' },
      storage: { driver: 'ephemeral', driverOptions: [], source: 'tmpfs', fstype: 'tmpfs', options: [], mountPoint: '/run/kata-containers/sandbox/ephemeral/cache' },
    })
    expect(emptyDirVolume(mount, { ...base, medium: 'memory', hostGid: 1000 })!.storage!.options).toEqual(['fsgid=1000'])
  })
  for (const disable of [true, false]) {
    for (const mode of ['shared-fs', 'block-plain']) {
      it(`hugepage emptyDir is always guest-created (disable_guest_empty_dir=${disable}, ${mode})`, () => {
        const v = emptyDirVolume(mount, {
          ...base, disableGuestEmptyDir: disable, emptydirMode: mode, medium: 'hugepages', hostMountOptions: ['rw', 'relatime', 'pagesize=2M'],
          hugepageLimits: [{ pageSize: '1GB', limit: 1073741824 }, { pageSize: '2MB', limit: 4194304 }],
        })
        expect(v).toEqual({
          kind: 'hugepages',
          mount: { ...mount, source: '/run/kata-containers/sandbox/ephemeral/cache', type: 'bind' },
          storage: { driver: 'ephemeral', driverOptions: [], source: 'nodev', fstype: 'hugetlbfs', options: ['pagesize=2097152,size=4194304'], mountPoint: '/run/kata-containers/sandbox/ephemeral/cache' },
        })
      })
    }
  }
  it('hugepage emptyDir without pagesize option → No pagesize option found', () => {
    expect(() => emptyDirVolume(mount, { ...base, medium: 'hugepages', hostMountOptions: ['rw'] })).toThrow(/No pagesize option found/)
  })
  it('disk emptyDir, disable_guest_empty_dir = false (shared-fs) → local storage under the sandbox rootfs', () => {
    expect(emptyDirVolume(mount, { ...base, disableGuestEmptyDir: false, medium: 'disk', hostGid: 2000 })).toEqual({
      kind: 'local',
      mount: { ...mount, source: '/run/kata-containers/shared/containers/sb1/rootfs/local/cache', type: 'local' },
      storage: { driver: 'local', driverOptions: [], source: 'local', fstype: 'local', options: ['mode=0777', 'fsgid=2000'], mountPoint: '/run/kata-containers/shared/containers/sb1/rootfs/local/cache' },
    })
  })
  it('disk emptyDir, disable_guest_empty_dir = true (default) → shared bind volume, no storage', () => {
    expect(emptyDirVolume(mount, { ...base, medium: 'disk' })).toEqual({ kind: 'shared-bind', mount })
  })
  it('disk emptyDir in a block mode → left to the block volume', () => {
    expect(emptyDirVolume(mount, { ...base, disableGuestEmptyDir: false, emptydirMode: 'block-encrypted', medium: 'disk' })).toEqual({ kind: 'block', mount })
  })
  it('not an emptyDir → undefined', () => {
    expect(emptyDirVolume({ ...mount, source: '/data/cache' }, { ...base, medium: 'memory' })).toBeUndefined()
  })
})
