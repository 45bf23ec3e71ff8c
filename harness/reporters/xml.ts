// A minimal XML tree and serialiser: renderers build the tree, then serialise it once.
export interface XmlElement {
  name: string
  attrs?: Record<string, string | number | null | undefined>
  children?: XmlNode[]
}
export type XmlNode = XmlElement | { text: string }

// XML 1.0 forbids most C0 controls even when escaped; drop them (terminal colour codes, NULs).
// eslint-disable-next-line no-control-regex
const INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g

export function escapeXml(s: string): string {
  return s
    .replace(INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

export function el(name: string, attrs?: XmlElement['attrs'], children?: XmlNode[]): XmlElement {
  return { name, attrs, children }
}
export function text(s: string): XmlNode {
  return { text: s }
}

function serializeNode(n: XmlNode, indent: string, out: string[]): void {
  if ('text' in n) {
    out.push(escapeXml(n.text))
    return
  }
  const attrs = Object.entries(n.attrs ?? {})
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`)
    .join('')
  const kids = n.children ?? []
  if (kids.length === 0) {
    out.push(`${indent}<${n.name}${attrs}/>\n`)
    return
  }
  if (kids.every((k) => 'text' in k)) {
    out.push(`${indent}<${n.name}${attrs}>`)
    for (const k of kids) serializeNode(k, '', out)
    out.push(`</${n.name}>\n`)
    return
  }
  out.push(`${indent}<${n.name}${attrs}>\n`)
  for (const k of kids) {
    if ('text' in k) out.push(`${indent}  ${escapeXml(k.text)}\n`)
    else serializeNode(k, indent + '  ', out)
  }
  out.push(`${indent}</${n.name}>\n`)
}

export function serializeXml(root: XmlElement): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
  serializeNode(root, '', out)
  return out.join('')
}
