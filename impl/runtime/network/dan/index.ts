export * from './dan-config.ts'
export * from './dan-endpoints.ts'
export * from './dan-network.ts'
