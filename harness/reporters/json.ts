// conformance.json: the model itself, the input of `kataref report merge`.
import type { ConformanceReport } from './model.ts'

export function renderJson(report: ConformanceReport): string {
  return JSON.stringify(report, null, 2) + '\n'
}
