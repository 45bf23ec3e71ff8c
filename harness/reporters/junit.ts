// junit.xml: one <testsuite> per scenario, one <testcase> per test. Skips carry their reason.
import type { ConformanceReport, ScenarioResult, TestCaseResult } from './model.ts'
import { el, serializeXml, text, type XmlElement, type XmlNode } from './xml.ts'

const secs = (ms: number) => (ms / 1000).toFixed(3)

function errorText(errs: TestCaseResult['errors']): string {
  return errs.map((e) => e.stack ?? e.message).join('\n\n')
}

function testcase(sc: ScenarioResult, t: TestCaseResult): XmlElement {
  const kids: XmlNode[] = []
  if (t.status === 'skipped') kids.push(el('skipped', { message: t.skipReason ?? 'skipped' }))
  if (t.status === 'failed') {
    const first = t.errors[0]?.message ?? 'failed'
    kids.push(el('failure', { message: first, type: 'AssertionError' }, [text(errorText(t.errors))]))
  }
  return el('testcase', { classname: sc.name, name: t.name, file: sc.file, time: secs(t.durationMs) }, kids)
}

function testsuite(sc: ScenarioResult): XmlElement {
  const tests = sc.tests.map((t) => testcase(sc, t))
  // File-level errors (import failure, missing metadata) have no test: report them as one failing case.
  if (sc.errors.length > 0 || (sc.status === 'failed' && !sc.tests.some((t) => t.status === 'failed'))) {
    tests.push(el('testcase', { classname: sc.name, name: '(scenario file)', file: sc.file, time: '0.000' }, [el('failure', { message: sc.errors[0]?.message ?? 'failed', type: 'Error' }, [text(errorText(sc.errors))])]))
  }
  const props: XmlNode[] = [
    el('property', { name: 'upstream', value: sc.upstream?.change ?? '' }),
    ...(sc.upstream?.link ? [el('property', { name: 'upstream.link', value: sc.upstream.link })] : []),
    ...(sc.gap ? [el('property', { name: 'gap.upstream', value: sc.gap.upstream }), el('property', { name: 'gap.kataref', value: sc.gap.kataref })] : []),
    ...(sc.bootMs !== null ? [el('property', { name: 'bootMs', value: sc.bootMs })] : []),
    ...(sc.contractTested ? [el('property', { name: 'contract-tested', value: sc.contractTested })] : []),
  ]
  const failures = tests.filter((t) => t.children?.some((c) => 'name' in c && c.name === 'failure')).length
  const skipped = sc.tests.filter((t) => t.status === 'skipped').length
  const logs = sc.logs.map((l) => `--- ${l.title} ---\n${l.content}`).join('\n')
  return el('testsuite', { name: sc.name, tests: tests.length, failures, errors: 0, skipped, time: secs(sc.durationMs), file: sc.file }, [
    el('properties', {}, props),
    ...tests,
    ...(logs ? [el('system-out', {}, [text(logs)])] : []),
  ])
}

export function renderJunit(report: ConformanceReport): string {
  const suites = report.scenarios.map(testsuite)
  const count = (n: string) => suites.reduce((a, s) => a + Number(s.attrs?.[n] ?? 0), 0)
  return serializeXml(
    el('testsuites', { name: 'kataref conformance', tests: count('tests'), failures: count('failures'), errors: 0, skipped: count('skipped'), time: secs(report.run.durationMs), timestamp: report.run.startedAt }, suites),
  )
}
