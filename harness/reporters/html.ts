// index.html: one self-contained page. Inline CSS, no scripts, no external assets or links (upstream
// links are shown as text); collapsible logs use <details>. Every string from the model is escaped.
import type { ConformanceReport, ScenarioResult } from './model.ts'

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}
const e = escapeHtml

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}
table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.passed{color:#176f2c}.failed{color:#b00020}.skipped{color:#8a6d00}
.status{font-weight:bold;text-transform:uppercase}
.counts span{margin-right:1.5em;font-weight:bold}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:30em;white-space:pre-wrap}
.gap{font-family:monospace;font-size:12px}
code{font-size:12px}
section{margin-bottom:2em}
`

function ms(n: number | null): string {
  return n === null ? '–' : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`
}

/** A pass against a fake is said as such, next to the status. */
function contractNote(sc: ScenarioResult): string {
  return sc.contractTested && sc.status === 'passed' ? ' <span>(contract-tested)</span>' : ''
}

function scenarioSection(sc: ScenarioResult): string {
  const upstream = sc.upstream ? `${e(sc.upstream.change)}${sc.upstream.link ? `<br><code>${e(sc.upstream.link)}</code>` : ''}` : '<em>no metadata</em>'
  const gap = sc.gap ? `<div class="gap">upstream: ${e(sc.gap.upstream)}<br>kataref: ${e(sc.gap.kataref)}</div>` : '–'
  const rows = sc.tests
    .map((t) => `<tr><td>${e(t.name)}</td><td class="status ${t.status}">${t.status}</td><td>${ms(t.durationMs)}</td><td>${e(t.skipReason ?? '')}</td></tr>`)
    .join('\n')
  const all = [...sc.errors, ...sc.tests.flatMap((t) => t.errors)]
  const errors = all.length ? `<details open><summary>errors (${all.length})</summary><pre>${e(all.map((x) => x.stack ?? x.message).join('\n\n'))}</pre></details>` : ''
  const logs = sc.logs.map((l) => `<details><summary>${e(l.title)}</summary><pre>${e(l.content)}</pre></details>`).join('\n')
  return `<section id="${e('scenario-' + sc.name)}">
<h2 class="${sc.status}">${e(sc.name)} <small class="status ${sc.status}">${sc.status}</small></h2>
<table>
<tr><th>file</th><td><code>${e(sc.file)}</code></td></tr>
<tr><th>status</th><td class="status ${sc.status}">${sc.status}${contractNote(sc)}${sc.skipReason ? ` <span>${e(sc.skipReason)}</span>` : ''}</td></tr>
<tr><th>duration</th><td>${ms(sc.durationMs)}</td></tr>
<tr><th>boot</th><td>${ms(sc.bootMs)}</td></tr>
<tr><th>upstream change</th><td>${upstream}</td></tr>
<tr><th>upstream vs kataref</th><td>${gap}</td></tr>
${sc.contractTested ? `<tr><th>contract-tested</th><td>${e(sc.contractTested)}</td></tr>` : ''}
<tr><th>requires</th><td>${e(sc.requires.join(', ') || '–')}</td></tr>
</table>
<table><tr><th>test</th><th>status</th><th>duration</th><th>note</th></tr>
${rows}
</table>
${errors}
${logs}
</section>`
}

export function renderHtml(report: ConformanceReport): string {
  const { summary: s, run, host } = report
  const shard = run.shard ? `shard ${run.shard.index}/${run.shard.count}` : run.mergedFrom ? `merged from ${run.mergedFrom.length} shard(s)` : 'full run'
  const overview = report.scenarios
    .map(
      (sc) =>
        `<tr><td>${e(sc.name)}</td><td class="status ${sc.status}">${sc.status}${contractNote(sc)}</td><td>${e(sc.skipReason ?? '')}</td><td>${ms(sc.durationMs)}</td><td>${ms(sc.bootMs)}</td><td>${e(sc.upstream?.change ?? '')}</td></tr>`,
    )
    .join('\n')
  const runErrors = report.errors.length ? `<section><h2 class="failed">run errors</h2><pre>${e(report.errors.map((x) => x.stack ?? x.message).join('\n\n'))}</pre></section>` : ''
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kataref conformance</title>
<style>${CSS}</style></head>
<body>
<h1>kataref conformance</h1>
<p>${e(shard)} · ${e(run.startedAt)} · ${ms(run.durationMs)} · ended: ${e(run.endReason)}${run.grep ? ` · grep <code>${e(run.grep)}</code>` : ''}</p>
<p>host ${e(host.hostname)}: kernel ${e(host.kernel)} (${e(host.arch)}), ${e(host.qemu ?? 'no QEMU')}, accel ${e(host.accel)} · kataref ${e(run.kataref)}, vitest ${e(run.vitest)}, node ${e(run.node)}</p>
<p class="counts"><span>total ${s.total}</span><span class="passed">passed ${s.passed}</span><span class="failed">failed ${s.failed}</span><span class="skipped">skipped ${s.skipped}</span></p>
${runErrors}
<table><tr><th>scenario</th><th>status</th><th>skip reason</th><th>duration</th><th>boot</th><th>upstream change</th></tr>
${overview}
</table>
${report.scenarios.map(scenarioSection).join('\n')}
</body></html>
`
}
