export * from './kata-virtual-volume.ts'
export * from './copy-file.ts'
export * from './empty-dir.ts'
