// Hand-built reports for renderer and merge tests.
import { CONFORMANCE_REPORT_VERSION, summarize, type ConformanceReport, type ScenarioResult } from '../reporters/model.ts'

export function sampleScenario(name: string, status: ScenarioResult['status'], extra: Partial<ScenarioResult> = {}): ScenarioResult {
  return {
    name,
    file: `scenarios/${name}.scenario.ts`,
    status,
    skipReason: status === 'skipped' ? 'skipped: missing kvm: /dev/kvm is missing' : null,
    durationMs: 1500,
    bootMs: status === 'skipped' ? null : 900,
    upstream: { change: `kata-containers/kata-containers agent: ${name}`, link: 'https://github.com/kata-containers/kata-containers/pull/1' },
    gap: null,
    requires: ['qemu'],
    tests: [
      {
        name: 'does the thing',
        status,
        skipReason: status === 'skipped' ? 'skipped: missing kvm: /dev/kvm is missing' : null,
        durationMs: 600,
        errors: status === 'failed' ? [{ message: 'expected 1 to be 2', stack: 'AssertionError: expected 1 to be 2\n    at x.scenario.ts:3:4' }] : [],
      },
    ],
    errors: [],
    logs: status === 'failed' ? [{ type: 'kataref:console', title: 'does the thing: guest g1 console', content: '[    0.1] Linux version 6.1\n{"msg":"agent up"}' }] : [],
    ...extra,
  }
}

export function sampleReport(scenarios: ScenarioResult[], extra: Partial<ConformanceReport['run']> = {}): ConformanceReport {
  return {
    version: CONFORMANCE_REPORT_VERSION,
    run: {
      startedAt: '2026-11-29T01:00:00.000Z',
      finishedAt: '2026-11-29T01:00:10.000Z',
      durationMs: 10_000,
      shard: null,
      endReason: scenarios.some((s) => s.status === 'failed') ? 'failed' : 'passed',
      grep: null,
      kataref: '0.1.0',
      vitest: '4.1.12',
      node: 'v20.0.0',
      ...extra,
    },
    host: { kernel: '6.1.0', arch: 'x64', qemu: 'QEMU emulator version 7.2.0', accel: 'tcg', hostname: 'ci' },
    summary: summarize(scenarios),
    scenarios,
    errors: [],
  }
}
