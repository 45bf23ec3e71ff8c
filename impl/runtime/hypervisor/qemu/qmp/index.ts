// Public surface of the QMP client.
export { QmpClient, DEFAULT_COMMAND_TIMEOUT_MS, type QmpClientOptions, type ExecuteOptions } from './qmp-client.ts'
export { connectQmpSocket, QMP_READY_TIMEOUT_MS, QMP_RETRY_INTERVAL_MS, type ConnectQmpOptions } from './qmp-socket.ts'
export { QmpCommandError, QmpClosedError, QmpProtocolError, QmpAbortedError } from './qmp-errors.ts'
export { socketFdSender, sendFdsOnFd, FdPassingError, type FdSender } from './fd-passing.ts'
export type { EventPredicate, WaitOptions } from './event-queue.ts'
export { isDeviceDeleted, type QmpEvent, type QmpGreeting, type QmpErrorBody } from './qmp-types.ts'
