import { scenario, test, expect } from '../harness/scenario.ts'
import { HealthCheckResponse_ServingStatus } from '../impl/gen/health_pb.ts'

scenario(
  {
    name: 'guest-boot',
    upstream: 'kata-containers agent: grpc.Health/Check, GetGuestDetails, CreateSandbox/DestroySandbox (src/agent/src/rpc.rs, health service)',
    requires: ['qemu'],
  },
  () => {
    test('the agent in the guest answers grpc.Health/Check with SERVING', async ({ guest }) => {
      const res = await guest.agent.health.check({}, { timeoutMs: 10_000 })
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING)
      // The witness sees the agent running as a child of the guest's PID 1.
      const ppid = await guest.debug.run(`awk '/^PPid:/ {print $2}' /proc/$(pidof node)/status`)
      expect(ppid.stdout.trim()).toBe('1')
    })

    test('GetGuestDetails returns the guest kernel version, which the witness confirms', async ({ guest }) => {
      const details = await guest.agent.agent.getGuestDetails({ memBlockSize: true, memHotplugProbe: true }, { timeoutMs: 10_000 })
      const uname = (await guest.debug.run('uname -r')).stdout.trim()
      expect(uname).toBe(guest.kernelVersion)
      expect(details.agentDetails?.extraFeatures).toContain(`kernel_version=${uname}`)
      expect(details.agentDetails?.version).toMatch(/kataref/)
      expect(details.agentDetails?.initDaemon).toBe(false)
    })

    test('CreateSandbox sets the hostname and makes the sandbox dirs; DestroySandbox removes them', async ({ guest }) => {
      await guest.agent.agent.createSandbox({ sandboxId: 'sb-boot', hostname: 'kataref-guest', dns: ['nameserver 192.0.2.53'] }, { timeoutMs: 10_000 })
      expect((await guest.debug.run('hostname')).stdout.trim()).toBe('kataref-guest')
      const dirs = await guest.debug.run('test -d /run/kata-containers/sandbox && test -d /run/kata-containers/shared/containers && cat /run/kata-containers/sandbox/resolv.conf')
      expect(dirs.exitCode).toBe(0)
      expect(dirs.stdout).toContain('nameserver 192.0.2.53')

      await guest.agent.agent.destroySandbox({}, { timeoutMs: 10_000 })
      const gone = await guest.debug.run('test -e /run/kata-containers/sandbox || test -e /run/kata-containers/shared')
      expect(gone.exitCode).not.toBe(0)
    })
  },
)
