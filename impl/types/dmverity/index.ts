// kata-types dm-verity vocabulary on the host: DmVerityInfo, containerd sidecars, partition options.
export * from './dm-verity-info.ts'
export * from './sidecar.ts'
export * from './partition-options.ts'
