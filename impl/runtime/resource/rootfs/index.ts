// Container rootfs on the host: multi-layer EROFS (GPT VMDK / raw / fsmerge) and its Storage entries.
export * from './multi-layer-mounts.ts'
export * from './storage.ts'
export * from './erofs-rootfs.ts'
export * from './upstream-differences.ts'
