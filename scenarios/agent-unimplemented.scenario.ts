import { scenario, test, expect } from '../harness/scenario.ts'
import { Code } from '../impl/types/errors.ts'

scenario(
  {
    name: 'agent-unimplemented',
    upstream: 'ttrpc: unknown service/method answer UNIMPLEMENTED and the connection stays usable (containerd/ttrpc services.go; Kata agent on ttrpc-rust)',
    gap: {
      upstream: 'ttrpc-rust (the Kata agent) answers an unknown service with 3 INVALID_ARGUMENT "<name> service does not exist"',
      kataref: 'Go-style 12 UNIMPLEMENTED "service <name>" for unknown services and methods alike, as protocols.md §1.7 asks',
    },
    requires: ['qemu'],
  },
  () => {
    test('unknown methods and services get UNIMPLEMENTED naming them; the same connection keeps working', async ({ guest }) => {
      const pidBefore = (await guest.debug.run('pidof node')).stdout.trim()
      const raw = guest.agent.client

      await expect(raw.invoke('grpc.AgentService', 'NoSuchMethod', new Uint8Array(), { timeoutMs: 10_000 })).rejects.toMatchObject({
        code: Code.UNIMPLEMENTED,
        message: expect.stringContaining('method NoSuchMethod'),
      })
      await expect(raw.invoke('grpc.Foo', 'Bar', new Uint8Array(), { timeoutMs: 10_000 })).rejects.toMatchObject({
        code: Code.UNIMPLEMENTED,
        message: expect.stringContaining('service grpc.Foo'),
      })
      // A method of the Kata API this agent does not serve: Unimplemented with its wire name.
      await expect(guest.agent.agent.getMetrics({}, { timeoutMs: 10_000 })).rejects.toMatchObject({
        code: Code.UNIMPLEMENTED,
        message: expect.stringContaining('GetMetrics'),
      })

      const res = await guest.agent.health.check({}, { timeoutMs: 10_000 })
      expect(res.status).toBe(1)
      // Same agent process: nothing crashed or restarted behind our back.
      expect((await guest.debug.run('pidof node')).stdout.trim()).toBe(pidBefore)
    })
  },
)
