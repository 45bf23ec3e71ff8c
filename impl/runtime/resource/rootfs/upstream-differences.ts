// Where kataref's multi-layer EROFS / dm-verity host behaviour knowingly differs from upstream
// HEAD, for the conformance report's "upstream: … / kataref: …" columns. Each entry names the test
// that pins our side. Byte-level quirks other tools check (MBR size, missing backup GPT) stay
// upstream-compatible by default and are only opt-ins.
export interface UpstreamDifference {
  id: string
  upstream: string
  kataref: string
  test: string
}

export const UPSTREAM_DIFFERENCES: readonly UpstreamDifference[] = [
  {
    id: '15.1',
    upstream: 'superblock with salt_size 0 → salt option = 32 zero bytes; guest verification fails',
    kataref: 'salt option empty (agent maps it to no salt); verification succeeds',
    test: 'impl/types/dmverity/dmverity.test.ts › quirk 15.1 …',
  },
  {
    id: '15.2',
    upstream: 'superblock block sizes, algorithm and hash type never forwarded; 512-byte or non-sha256 layers get a wrong table',
    kataref: 'non-default X-kata.dmverity.blocksize/hashsize/algorithm/hashtype appended from a valid v1 superblock',
    test: 'impl/types/dmverity/dmverity.test.ts › quirk 15.2 …',
  },
  {
    id: '15.3',
    upstream: 'no-superblock=true with no sidecar salt → default salt, whatever salt was used',
    kataref: 'same (the salt is unknowable without a superblock); a sidecar "salt" is the way to describe it',
    test: 'impl/types/dmverity/dmverity.test.ts › quirk 15.3 …',
  },
  {
    id: '15.4',
    upstream: 'single raw layer forwards X-containerd.dmverity= verbatim; guest mounts without verity',
    kataref: 'single raw layer gets the five X-kata.dmverity.* options; the containerd option is dropped',
    test: 'impl/runtime/resource/rootfs/erofs-rootfs.test.ts › quirk 15.4 …',
  },
  {
    id: '15.5',
    upstream: 'fsmeta mount with device= mixed with other EROFS mounts → GPT mode silently drops the device= blobs',
    kataref: 'refused with InvalidInputError naming the mount',
    test: 'impl/runtime/resource/rootfs/erofs-rootfs.test.ts › quirk 15.5 …',
  },
  {
    id: '15.6',
    upstream: 'protective MBR size = full_total − 1 (larger than the disk); no backup GPT',
    kataref: 'same by default (byte-compatible); opt-ins rightSizedMbr and backupGpt make sgdisk -v report no problems',
    test: 'images/gpt/assemble.test.ts › opt-in backup GPT + right-sized MBR …',
  },
  {
    id: '13-rollback',
    upstream: 'no rollback in new(): head/pad files and an attached GPT device are left behind when a later step fails',
    kataref: 'a failure detaches what was attached and deletes the files made',
    test: 'impl/runtime/resource/rootfs/erofs-rootfs.test.ts › row 22 … / attach failure …',
  },
  {
    id: '13-tracking',
    upstream: 'pad files tracked twice (generated + existing), stale pads included',
    kataref: 'each path tracked once; stale pads still tracked for cleanup; cleanup idempotent',
    test: 'images/gpt/assemble.test.ts › row 27 (files part) …',
  },
  {
    id: '13-full-image',
    upstream: 'a 1 MiB head is cut from a temporary gpt_meta_full.img (left behind if writing it fails)',
    kataref: 'the head is rendered in memory (same bytes); no temporary image exists',
    test: 'images/gpt/assemble.test.ts › row 7 / row 8 …',
  },
  {
    id: '11-default',
    upstream: 'DmVerityInfo derived Default has hash_type 0 (serde default is 1)',
    kataref: 'default hash_type 1 everywhere',
    test: 'impl/types/dmverity/dmverity.test.ts › quirk: derived Default …',
  },
  {
    id: '6.3-memfd',
    upstream: 'descriptor in a memfd named kata-qemu-vmdk when direct I/O is off',
    kataref: 'descriptor in an unlinked file under /dev/shm (Node has no memfd_create); equally anonymous',
    test: 'images/vmdk/fdset-source.test.ts › row 14 …',
  },
]
