// Writes every format. A renderer that throws does not stop the others; its error is returned so the
// caller reports it (and fails the run) instead of losing it.
import { mkdir, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { renderHtml } from './html.ts'
import { renderJson } from './json.ts'
import { renderJunit } from './junit.ts'
import type { ConformanceReport } from './model.ts'

export type Renderer = (r: ConformanceReport) => string

export const RENDERERS: ReadonlyArray<{ file: string; render: Renderer }> = [
  { file: 'conformance.json', render: renderJson },
  { file: 'junit.xml', render: renderJunit },
  { file: 'index.html', render: renderHtml },
]

export class RenderError extends Error {
  constructor(readonly file: string, options: ErrorOptions) {
    super(`writing ${file} failed: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`, options)
    this.name = 'RenderError'
  }
}

export async function writeReports(report: ConformanceReport, outDir: string, renderers = RENDERERS): Promise<{ written: string[]; errors: RenderError[] }> {
  await mkdir(outDir, { recursive: true })
  const written: string[] = []
  const errors: RenderError[] = []
  for (const { file, render } of renderers) {
    const path = join(outDir, file)
    try {
      const body = render(report)
      await writeFile(`${path}.tmp`, body)
      await rename(`${path}.tmp`, path)
      written.push(path)
    } catch (cause) {
      errors.push(new RenderError(file, { cause }))
    }
  }
  return { written, errors }
}
