// GPT disks whose partitions are EROFS layer files used in place.
export * from './layout.ts'
export * from './guid.ts'
export * from './head-image.ts'
export * from './head-reader.ts'
export * from './disk-files.ts'
export * from './assemble.ts'
