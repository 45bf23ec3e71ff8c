// JSON that keeps numbers as written (spec §7.2: CLH's snapshot `config.json` is rewritten with "numbers
// kept as written"; JS numbers would round u64 values above 2^53). Parse gives plain objects/arrays
// with numbers as RawNumber; stringify writes them back verbatim.
export class RawNumber {
  constructor(readonly text: string) {}
  toJSON(): string {
    return this.text
  }
}

export type RawJson = null | boolean | string | RawNumber | RawJson[] | { [k: string]: RawJson }

export class RawJsonError extends Error {}

export function parseRawJson(text: string): RawJson {
  let i = 0
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++
  }
  const fail = (what: string): never => {
    throw new RawJsonError(`invalid JSON at offset ${i}: ${what}`)
  }
  const value = (): RawJson => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const o: { [k: string]: RawJson } = {}
      ws()
      if (text[i] === '}') {
        i++
        return o
      }
      for (;;) {
        ws()
        if (text[i] !== '"') fail('expected a key')
        const k = str()
        ws()
        if (text[i++] !== ':') fail("expected ':'")
        o[k] = value()
        ws()
        const n = text[i++]
        if (n === '}') return o
        if (n !== ',') fail("expected ',' or '}'")
      }
    }
    if (c === '[') {
      i++
      const a: RawJson[] = []
      ws()
      if (text[i] === ']') {
        i++
        return a
      }
      for (;;) {
        a.push(value())
        ws()
        const n = text[i++]
        if (n === ']') return a
        if (n !== ',') fail("expected ',' or ']'")
      }
    }
    if (c === '"') return str()
    if (text.startsWith('true', i)) return (i += 4), true
    if (text.startsWith('false', i)) return (i += 5), false
    if (text.startsWith('null', i)) return (i += 4), null
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i))
    if (!m) return fail('unexpected character')
    i += m[0].length
    return new RawNumber(m[0])
  }
  const str = (): string => {
    const start = i
    i++
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    if (i >= text.length) fail('unterminated string')
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const v = value()
  ws()
  if (i !== text.length) fail('trailing data')
  return v
}

export function stringifyRawJson(v: RawJson): string {
  if (v instanceof RawNumber) return v.text
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(stringifyRawJson).join(',')}]`
  return `{${Object.entries(v)
    .map(([k, x]) => `${JSON.stringify(k)}:${stringifyRawJson(x)}`)
    .join(',')}}`
}

export function isObject(v: RawJson | undefined): v is { [k: string]: RawJson } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RawNumber)
}
