// EROFS layer images for multi-layer rootfs disks.
export { buildErofsLayer, EROFS_DEFAULT_UUID, type ErofsBuildOptions, type ErofsLayer } from './build-layer.ts'
