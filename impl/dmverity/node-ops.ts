// Filesystem node operations the DM and storage code need (§9.8, §15 "node ops").
// Real: LinuxNodeOps (node:fs + mknod(2) through koffi). Tests: FakeNodeOps (in-memory tree).

export const S_IFBLK = 0o060000

export interface NodeOps {
  /** mkdir -p; returns the directories it created, outermost first (for exact rollback). */
  mkdirAll(path: string): Promise<string[]>
  exists(path: string): Promise<boolean>
  /** Remove a file or device node. */
  unlink(path: string): Promise<void>
  /** Remove an empty directory; false (no error) if it is not empty or absent. */
  rmdirIfEmpty(path: string): Promise<boolean>
  /** rm -rf of a scratch tree we own (a run-backed overlay upper/work); absent is fine. */
  removeTree?(path: string): Promise<void>
  /** mknod(path, S_IFBLK | mode, makedev(major, minor)). */
  mknodBlock(path: string, mode: number, major: number, minor: number): Promise<void>
}
