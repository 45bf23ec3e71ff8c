import { scenario, test, expect } from '../harness/scenario.ts'
import { cgroupProcs, createAndStart, exec, nsInitPid, run, sh, T } from './_support/containers.ts'

const CID = 'ctr-sig'

scenario(
  {
    name: 'exit-code-signal',
    upstream: 'kata-containers c2d737c9d7: WaitProcess reports 128+signal for a signal-killed process (src/agent/src/signal.rs); before it a SIGKILLed container reported 9',
    requires: ['qemu'],
  },
  () => {
    test('SignalProcess 9 to the init (exec_id "") → WaitProcess 137 for every concurrent waiter; the witness saw PID 1 of its namespace die', async ({ guest }) => {
      await createAndStart(guest, CID, ['sleep', '1000'])
      const init = await nsInitPid(guest, await cgroupProcs(guest, CID))
      expect(init).toBeDefined()
      // PID 1 of a PID namespace ignores SIGTERM without a handler (README clarification): still alive.
      await guest.agent.agent.signalProcess({ containerId: CID, execId: '', signal: 15 }, T)
      expect((await sh(guest, `sleep 0.5; test -e /proc/${init} && echo alive`)).stdout.trim()).toBe('alive')
      const waits = [1, 2, 3].map(() => guest.agent.agent.waitProcess({ containerId: CID, execId: CID }, T))
      await guest.agent.agent.signalProcess({ containerId: CID, execId: '', signal: 9 }, T)
      expect((await Promise.all(waits)).map((w) => w.status)).toEqual([137, 137, 137])
      expect((await sh(guest, `i=0; while [ -e /proc/${init} ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; test -e /proc/${init} && echo alive || echo gone`)).stdout.trim()).toBe('gone')
      await guest.agent.agent.removeContainer({ containerId: CID, timeout: 10 }, T)
    })

    test('exec processes: kill -TERM $$ → 143, kill -INT $$ → 130, SIGSEGV → 139, exit 42 → 42, exit 137 → 137 (indistinguishable, accepted)', async ({ guest }) => {
      await createAndStart(guest, CID, ['sleep', '1000'])
      expect((await run(guest, CID, 'term', ['sh', '-c', 'kill -TERM $$; sleep 5'])).status).toBe(143)
      expect((await run(guest, CID, 'int', ['sh', '-c', 'kill -INT $$; sleep 5'])).status).toBe(130)
      expect((await run(guest, CID, 'segv', ['sh', '-c', 'kill -SEGV $$; sleep 5'])).status).toBe(139)
      expect((await run(guest, CID, 'e42', ['sh', '-c', 'exit 42'])).status).toBe(42)
      expect((await run(guest, CID, 'e137', ['sh', '-c', 'exit 137'])).status).toBe(137)
    })

    test('SignalProcess SIGKILL to an exec from outside → 137; three concurrent waiters on an exit 3 all get 3', async ({ guest }) => {
      await exec(guest, CID, 'victim', ['sleep', '1000'])
      const w = guest.agent.agent.waitProcess({ containerId: CID, execId: 'victim' }, T)
      await guest.agent.agent.signalProcess({ containerId: CID, execId: 'victim', signal: 9 }, T)
      expect((await w).status).toBe(137)

      await exec(guest, CID, 'three', ['sh', '-c', 'sleep 1; exit 3'])
      const ws = await Promise.all([1, 2, 3].map(() => guest.agent.agent.waitProcess({ containerId: CID, execId: 'three' }, T)))
      expect(ws.map((x) => x.status)).toEqual([3, 3, 3])
      await guest.agent.agent.removeContainer({ containerId: CID, timeout: 10 }, T)
    })
  },
)
