import { describe, expect, it } from 'vitest'
import { junitCases, parseXml } from '../test/junit-parse.ts'
import { sampleReport, sampleScenario } from '../test/sample-report.ts'
import { escapeHtml, renderHtml } from './html.ts'
import { renderJson } from './json.ts'
import { renderJunit } from './junit.ts'
import { writeReports } from './write.ts'
import { escapeXml, el, serializeXml, text } from './xml.ts'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const hostile = '<script>alert("x")</script> & \'q\''

const report = sampleReport([
  sampleScenario('agent-health', 'passed', { gap: { upstream: 'Check answers before the sandbox exists', kataref: 'same, and logs it' } }),
  sampleScenario('guest-boot', 'failed'),
  sampleScenario('kvm-only', 'skipped'),
  sampleScenario('hostile-name', 'failed', {
    upstream: { change: hostile, link: 'javascript:alert(1)' },
    logs: [{ type: 'kataref:console', title: hostile, content: `boot\n${hostile}\n\u001b[31mred\u001b[0m` }],
    errors: [{ message: hostile }],
  }),
])

describe('xml', () => {
  it('escapes text and attributes and drops characters XML cannot carry', () => {
    expect(escapeXml(`<a b="c">&'\u0000\u001b`)).toBe('&lt;a b=&quot;c&quot;&gt;&amp;&apos;')
    const xml = serializeXml(el('r', { a: '"<>"', skip: undefined }, [el('k', {}, [text('<x>')]), el('e')]))
    expect(xml).toContain('<r a="&quot;&lt;&gt;&quot;">')
    expect(xml).not.toContain('skip=')
    expect(parseXml(xml).children.map((c) => [c.name, c.text])).toEqual([
      ['k', '<x>'],
      ['e', ''],
    ])
  })
})

describe('junit', () => {
  it('has one testcase per test with status, skip reason and failure message', () => {
    const cases = junitCases(renderJunit(report))
    expect(cases.map((c) => [c.suite, c.status])).toEqual([
      ['agent-health', 'passed'],
      ['guest-boot', 'failed'],
      ['kvm-only', 'skipped'],
      ['hostile-name', 'failed'],
      ['hostile-name', 'failed'],
    ])
    expect(cases[2]!.message).toBe('skipped: missing kvm: /dev/kvm is missing')
    expect(cases[1]!.message).toBe('expected 1 to be 2')
  })
  it('reports a file-level error as a failing (scenario file) case and round-trips hostile text', () => {
    const xml = renderJunit(report)
    expect(xml).not.toContain('<script>')
    const hostileSuite = parseXml(xml).children.find((s) => s.attrs.name === 'hostile-name')!
    const fileCase = hostileSuite.children.find((c) => c.attrs.name === '(scenario file)')!
    expect(fileCase.children[0]!.attrs.message).toBe(hostile)
    const props = hostileSuite.children.find((c) => c.name === 'properties')!.children
    expect(props.find((p) => p.attrs.name === 'upstream')!.attrs.value).toBe(hostile)
    expect(hostileSuite.children.find((c) => c.name === 'system-out')!.text).toContain(hostile)
  })
  it('counts tests, failures and skips on the root', () => {
    const root = parseXml(renderJunit(report))
    expect(root.attrs).toMatchObject({ tests: '5', failures: '3', skipped: '1' })
  })
})

describe('html', () => {
  const html = renderHtml(report)
  it('escapes everything from the model', () => {
    expect(escapeHtml(hostile)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;')
    expect(html).not.toContain('<script')
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;')
  })
  it('is self-contained: inline CSS, no scripts, no external references', () => {
    expect(html).toMatch(/<style>[^<]+<\/style>/)
    expect(html).not.toMatch(/\b(src|href)\s*=/i)
    expect(html).not.toMatch(/<link\b|@import|url\(/i)
  })
  it('shows summary counts, per-scenario status, durations, upstream vs kataref and collapsible logs', () => {
    expect(html).toContain('passed 1')
    expect(html).toContain('failed 2')
    expect(html).toContain('skipped 1')
    expect(html).toContain('upstream: Check answers before the sandbox exists<br>kataref: same, and logs it')
    expect(html).toContain('<details><summary>does the thing: guest g1 console</summary>')
    expect(html).toContain('900 ms')
    expect(html).toContain('skipped: missing kvm')
  })
  it('says when a pass was against a fake (contract-tested), in HTML and JUnit', () => {
    const r = { ...report, scenarios: [{ ...sampleScenario('clh-template', 'passed'), contractTested: 'Cloud Hypervisor (needs KVM): a recording fake' }] }
    const h = renderHtml(r)
    expect(h).toContain('passed <span>(contract-tested)</span>')
    expect(h).toContain('<tr><th>contract-tested</th><td>Cloud Hypervisor (needs KVM): a recording fake</td></tr>')
    expect(renderJunit(r)).toContain('<property name="contract-tested" value="Cloud Hypervisor (needs KVM): a recording fake"/>')
    // A report without the field (older writers) renders as a plain pass.
    expect(renderHtml({ ...report, scenarios: [sampleScenario('plain', 'passed')] })).not.toContain('contract-tested')
  })
})

describe('writeReports', () => {
  it('writes every format, and a throwing renderer costs only its own file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kataref-write-'))
    try {
      const { written, errors } = await writeReports(report, dir, [
        { file: 'conformance.json', render: renderJson },
        {
          file: 'junit.xml',
          render: () => {
            throw new Error('boom')
          },
        },
        { file: 'index.html', render: renderHtml },
      ])
      expect(written.map((p) => p.slice(dir.length + 1))).toEqual(['conformance.json', 'index.html'])
      expect(errors.map((e) => e.message)).toEqual(['writing junit.xml failed: boom'])
      expect((await readdir(dir)).sort()).toEqual(['conformance.json', 'index.html'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
