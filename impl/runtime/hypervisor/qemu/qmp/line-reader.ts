// QMP framing: one JSON object per line (CRLF or LF). Knows bytes and lines only.
import { StringDecoder } from 'node:string_decoder'

export class LineReader {
  private buf = ''
  private readonly decoder = new StringDecoder('utf8')

  /** Feed a chunk; returns every complete, non-empty line it finished. */
  push(chunk: Buffer | string): string[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk)
    const lines: string[] = []
    let nl: number
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim()
      this.buf = this.buf.slice(nl + 1)
      if (line.length > 0) lines.push(line)
    }
    return lines
  }

  /** Bytes received after the last newline. */
  get pending(): string {
    return this.buf
  }
}
