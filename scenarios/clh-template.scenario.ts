// Cloud Hypervisor needs KVM, which this machine lacks: the templating contract (runtime-hypervisor-config.md
// §7.2) runs against FakeClhApi, a recording fake of CLH's REST API state machine. Reported as contract-tested.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { ClhApiClient } from '../impl/runtime/hypervisor/clh/clh-api.ts'
import { ClhVm, type ClhVmInput } from '../impl/runtime/hypervisor/clh/clh.ts'
import { FakeClhApi } from '../impl/runtime/hypervisor/clh/fake-clh-api.ts'
import { scenario, test, expect } from '../harness/scenario.ts'

scenario(
  {
    name: 'clh-template',
    upstream: 'kata-containers runtime: VM templating on Cloud Hypervisor — pause, snapshot, restore, resume, memory zone mem0, config rewritten shared=false (virtcontainers/clh.go)',
    contractTested: 'Cloud Hypervisor (needs KVM, absent here): FakeClhApi, a recording fake of its REST API state machine',
  },
  () => {
    let dir: string
    let fake: FakeClhApi
    let api: ClhApiClient
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kataref-clh-scenario-'))
      fake = new FakeClhApi(join(dir, 'clh-api.sock'))
      await fake.start()
      api = new ClhApiClient({ socketPath: fake.socketPath })
    })
    afterAll(async () => {
      await fake?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    })
    const input = (over: Partial<ClhVmInput>): ClhVmInput => ({ id: 'sb', kernel: '/k/vmlinux', cmdline: 'console=hvc0', vcpus: 1, memoryMiB: 512, vmStorePath: join(dir, 'vm'), ...over })

    test('a template VM is paused and snapshotted; a clone restores from it copy-on-write and resumes (CLH fake)', async () => {
      const tdir = join(dir, 'template')
      mkdirSync(tdir, { recursive: true })
      const memory = join(tdir, 'memory')
      writeFileSync(memory, '')

      const template = new ClhVm(input({ id: 'template', bootToBeTemplate: true, memoryPath: memory }), { api })
      await template.startVm()
      const create = fake.requests.find((r) => r.path === '/api/v1/vm.create')!.body as { memory: { shared: boolean; zones: { id: string; file: string; shared: boolean; size: number }[] } }
      // The template's RAM is one shared zone on the memory file.
      expect(create.memory.shared).toBe(true)
      expect(create.memory.zones).toMatchObject([{ id: 'mem0', file: memory, shared: true, size: 512 * 1024 * 1024 }])
      await template.pauseVm()
      await template.saveVm()
      await template.stopVm()
      const saved = JSON.parse(readFileSync(join(tdir, 'config.json'), 'utf8')) as { memory: { shared: boolean; zones: { shared: boolean }[] } }
      expect(saved.memory.shared).toBe(false)
      expect(saved.memory.zones.every((z) => z.shared === false)).toBe(true)

      fake.vm = undefined
      fake.requests.length = 0
      const clone = new ClhVm(input({ id: 'clone', bootFromTemplate: true, memoryPath: memory, devicesStatePath: join(tdir, 'state.json') }), { api })
      clone.createVm()
      expect(clone.isRestoring).toBe(true)
      await clone.startVm()
      // A function, so the check reads the fake's live state (TS narrowed fake.vm after the reset above).
      const state = (): string | undefined => fake.vm?.state
      expect(state()).toBe('Paused')
      await clone.resumeVm()
      expect(state()).toBe('Running')
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['PUT /api/v1/vm.restore', 'GET /api/v1/vm.info', 'PUT /api/v1/vm.resume'])
    })
  },
)
