// Shared printing for benchmarks: they print figures and ratios against a baseline measured in the
// same run, and never assert timings (this machine is noisy).
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Every round's figure, rounded and space-separated (the note column). */
export function listRounded(xs: number[]): string {
  return xs.map((x) => x.toFixed(0)).join(' ')
}

/** A table row: the median in ms, with every round's figure as the note. */
export function medianMsRow(label: string, xs: number[]): [string, string, string] {
  return [label, `${median(xs).toFixed(0)} ms`, listRounded(xs)]
}

export function printTable(name: string, rows: [string, string, string?][]): void {
  const w = Math.max(...rows.map((r) => r[0].length))
  process.stdout.write(`\n== bench/${name}\n`)
  for (const [label, value, note] of rows) process.stdout.write(`${label.padEnd(w)}  ${value.padStart(10)}${note ? `  (${note})` : ''}\n`)
}
