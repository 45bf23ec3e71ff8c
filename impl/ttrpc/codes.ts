// Status codes on the ttrpc wire (gRPC numbering, protocols.md §1.6) and their names for logs.
import { Code } from '../types/errors.ts'

export { Code }

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Code).map(([name, value]) => [value, name]))

/** `codeName(12)` → "UNIMPLEMENTED"; unknown numbers read as `CODE(<n>)`. */
export function codeName(code: number): string {
  return NAMES.get(code) ?? `CODE(${code})`
}

/** True for the codes a peer uses to say "this service/method is not supported" (3 from ttrpc-rust, 12 from Go). */
export function isNotSupported(code: number): boolean {
  return code === Code.UNIMPLEMENTED || code === Code.INVALID_ARGUMENT
}

/** Narrows an arbitrary wire number to a known Code; unknown numbers become UNKNOWN. */
export function toCode(n: number): Code {
  return NAMES.has(n) ? (n as Code) : Code.UNKNOWN
}
