export * from './workload-request.ts'
export * from './initial-size.ts'
export * from './qemu-size-args.ts'
export * from './profile-overheads.ts'
