// QMP wire shapes (QEMU's qapi/qmp-spec): greeting, command, success/error response, event.

export interface QmpGreeting {
  QMP: {
    version: { qemu: { major: number; minor: number; micro: number }; package: string }
    capabilities: string[]
  }
}

export interface QmpCommand {
  execute: string
  arguments?: Record<string, unknown>
  id?: string
}

export interface QmpErrorBody {
  class: string
  desc: string
}

export type QmpResponse =
  | { return: unknown; id?: unknown }
  | { error: QmpErrorBody; id?: unknown }

export interface QmpEvent {
  event: string
  data?: Record<string, unknown>
  timestamp?: { seconds: number; microseconds: number }
}

export type QmpMessage = QmpGreeting | QmpResponse | QmpEvent

export function isEvent(m: unknown): m is QmpEvent {
  return typeof m === 'object' && m !== null && typeof (m as { event?: unknown }).event === 'string'
}

export function isGreeting(m: unknown): m is QmpGreeting {
  return typeof m === 'object' && m !== null && 'QMP' in m
}

export function isResponse(m: unknown): m is QmpResponse {
  return typeof m === 'object' && m !== null && ('return' in m || 'error' in m)
}

/** `DEVICE_DELETED` for exactly this qdev id (not the `…/virtio-backend` path-only event). */
export function isDeviceDeleted(id: string): (e: QmpEvent) => boolean {
  return (e) => e.event === 'DEVICE_DELETED' && e.data?.device === id
}
