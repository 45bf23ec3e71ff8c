import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { scenario, test, expect } from '../harness/scenario.ts'
import { Code } from '../impl/types/errors.ts'
import { TtrpcClosedError } from '../impl/ttrpc/index.ts'
import { processAlive } from '../impl/types/process-alive.ts'


scenario(
  {
    name: 'guest-crash',
    upstream: 'kata-containers runtime: a dead VM fails in-flight agent calls instead of hanging (virtcontainers kata_agent.go, ttrpc client close)',
    requires: ['qemu'],
  },
  () => {
    test('the guest is killed mid-call: the call fails with a clear error before its deadline and nothing is left running', async ({ guest }) => {
      // Freeze the agent through the witness, so the call is surely in flight when the guest dies.
      expect((await guest.debug.run('kill -STOP $(pidof node)')).exitCode).toBe(0)
      const deadlineMs = 60_000
      const call = guest.agent.health.check({}, { timeoutMs: deadlineMs }).then(
        () => undefined,
        (e: unknown) => e,
      )
      await sleep(500)
      const pid = guest.vm.pid!
      expect(processAlive(pid)).toBe(true)
      process.kill(pid, 'SIGKILL')

      const err = await call
      // The connection's end, not the deadline, ended the call.
      expect(err).toBeInstanceOf(TtrpcClosedError)
      expect((err as TtrpcClosedError).code).toBe(Code.UNAVAILABLE)
      expect((err as Error).message).toContain('ttrpc: closed')

      await guest.stop()
      expect(processAlive(pid)).toBe(false)
      expect(existsSync(guest.runDir)).toBe(false)
      expect(existsSync(guest.agentSocketPath)).toBe(false)
    })
  },
)
