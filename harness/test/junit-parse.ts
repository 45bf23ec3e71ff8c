// Parses our junit.xml back into objects (elements, attributes, text), enough for the tests to check
// what CI tools will read. Not a general XML parser: no CDATA, comments or DTDs (we never write them).
export interface XmlNodeParsed {
  name: string
  attrs: Record<string, string>
  children: XmlNodeParsed[]
  text: string
}

const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')

export function parseXml(xml: string): XmlNodeParsed {
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, '')
  const root: XmlNodeParsed = { name: '#document', attrs: {}, children: [], text: '' }
  const stack = [root]
  const re = /<(\/?)([A-Za-z][\w.-]*)((?:\s+[\w.-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const top = stack[stack.length - 1]!
    if (m[5] !== undefined) {
      top.text += decode(m[5])
      continue
    }
    const [, closing, name, attrText, selfClosing] = m
    if (closing) {
      if (top.name !== name) throw new Error(`xml: </${name}> closes <${top.name}>`)
      stack.pop()
      continue
    }
    const attrs: Record<string, string> = {}
    for (const a of (attrText ?? '').matchAll(/([\w.-]+)="([^"]*)"/g)) attrs[a[1]!] = decode(a[2]!)
    const node: XmlNodeParsed = { name: name!, attrs, children: [], text: '' }
    top.children.push(node)
    if (!selfClosing) stack.push(node)
  }
  if (stack.length !== 1) throw new Error(`xml: unclosed <${stack[stack.length - 1]!.name}>`)
  const [doc] = root.children
  if (!doc || root.children.length !== 1) throw new Error('xml: expected exactly one root element')
  return doc
}

export interface JunitCase {
  suite: string
  name: string
  status: 'passed' | 'failed' | 'skipped'
  message: string | null
}

export function junitCases(xml: string): JunitCase[] {
  const doc = parseXml(xml)
  if (doc.name !== 'testsuites') throw new Error(`junit: root is <${doc.name}>`)
  return doc.children
    .filter((s) => s.name === 'testsuite')
    .flatMap((s) =>
      s.children
        .filter((c) => c.name === 'testcase')
        .map((c) => {
          const skipped = c.children.find((k) => k.name === 'skipped')
          const failure = c.children.find((k) => k.name === 'failure')
          return {
            suite: s.attrs.name!,
            name: c.attrs.name!,
            status: failure ? ('failed' as const) : skipped ? ('skipped' as const) : ('passed' as const),
            message: failure?.attrs.message ?? skipped?.attrs.message ?? null,
          }
        }),
    )
}
