// VMDK descriptors (twoGbMaxExtentFlat) that stitch files together into one virtual disk.
export * from './extents.ts'
export * from './descriptor.ts'
export * from './fdset-source.ts'
export * from './flat-reader.ts'
