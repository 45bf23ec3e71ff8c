import { defineConfig } from 'vitest/config'

// Two projects: fast unit tests on the host, and scenarios that boot real guests.
// `kataref conformance` drives the scenarios project with its own reporters.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['impl/**/*.test.ts', 'images/**/*.test.ts', 'harness/**/*.test.ts', 'bench/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'scenarios',
          include: ['scenarios/**/*.scenario.ts'],
          // A TCG boot takes seconds; fixtures own their deadlines, so the runner's timeout is generous.
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
