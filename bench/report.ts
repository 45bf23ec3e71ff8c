// Shared printing for benchmarks: they print figures and ratios against a baseline measured in the
// same run, and never assert timings (this machine is noisy).
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function printTable(name: string, rows: [string, string, string?][]): void {
  const w = Math.max(...rows.map((r) => r[0].length))
  process.stdout.write(`\n== bench/${name}\n`)
  for (const [label, value, note] of rows) process.stdout.write(`${label.padEnd(w)}  ${value.padStart(10)}${note ? `  (${note})` : ''}\n`)
}
