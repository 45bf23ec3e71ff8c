// Cloud Hypervisor templating (spec §7.2, rows 36–39) against FakeClhApi, a recording fake of CLH's
// REST API state machine (CLH needs KVM, which this machine lacks).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ClhApiClient, ClhApiError } from './clh-api.ts'
import { checkTemplateConfig, ClhVm, memoryConfig, prepareRestore, rewriteSnapshotConfig, VIRTIO_FS_TEMPLATE_ERROR, type ClhVmInput } from './clh.ts'
import { FakeClhApi } from './fake-clh-api.ts'
import { parseRawJson, stringifyRawJson } from './json-raw.ts'

let dir: string
let fake: FakeClhApi
let api: ClhApiClient

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kataref-clh-'))
  fake = new FakeClhApi(join(dir, 'clh-api.sock'))
  await fake.start()
  api = new ClhApiClient({ socketPath: fake.socketPath })
})
afterEach(async () => {
  await fake.close()
  rmSync(dir, { recursive: true, force: true })
})

function templateDir(): { tdir: string; memory: string } {
  const tdir = join(dir, 'template')
  mkdirSync(tdir, { recursive: true })
  const memory = join(tdir, 'memory')
  writeFileSync(memory, '')
  return { tdir, memory }
}

function input(over: Partial<ClhVmInput> = {}): ClhVmInput {
  return { id: 'sb1', kernel: '/k/vmlinux', cmdline: 'console=hvc0', vcpus: 1, memoryMiB: 512, vmStorePath: join(dir, 'vm'), ...over }
}

const paths = () => fake.requests.map((r) => `${r.method} ${r.path}`)

describe('CLH REST client (CLH fake)', () => {
  it('PauseVM / ResumeVM: PUT vm.pause / vm.resume with no body; vm.info follows the state machine (CLH fake)', async () => {
    const vm = new ClhVm(input(), { api })
    await vm.startVm()
    expect((await api.info()).state).toBe('Running')
    await vm.pauseVm()
    expect((await api.info()).state).toBe('Paused')
    await vm.resumeVm()
    expect((await api.info()).state).toBe('Running')
    expect(paths()).toEqual(['PUT /api/v1/vm.create', 'PUT /api/v1/vm.boot', 'GET /api/v1/vm.info', 'PUT /api/v1/vm.pause', 'GET /api/v1/vm.info', 'PUT /api/v1/vm.resume', 'GET /api/v1/vm.info'])
    for (const r of fake.requests.filter((x) => /pause|resume|boot/.test(x.path))) expect(r.body).toBeUndefined()
    await vm.stopVm()
    expect(fake.requests.at(-1)).toEqual({ method: 'PUT', path: '/api/v1/vm.shutdown', body: undefined })
  })

  it('API errors carry method, path, HTTP status and the body text (CLH fake)', async () => {
    const err = await api.pause().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ClhApiError)
    expect((err as Error).message).toBe('CLH API PUT /api/v1/vm.pause: HTTP 500: VM is not created')
  })
})

describe('CreateVM memory for templates (row 38, CLH fake)', () => {
  it('to-be-template, 512 MiB: size 0, shared, one zone mem0 of 536870912 bytes on the memory file, no hotplug_size (CLH fake)', async () => {
    const { memory } = templateDir()
    const vm = new ClhVm(input({ bootToBeTemplate: true, memoryPath: memory }), { api })
    await vm.startVm()
    const mem = (fake.requests[0]!.body as { memory: Record<string, unknown> }).memory
    expect(mem).toEqual({
      size: 0,
      mergeable: false,
      hotplug_method: 'Acpi',
      shared: true,
      hugepages: false,
      prefault: false,
      thp: true,
      zones: [{ id: 'mem0', size: 536870912, file: memory, shared: true, mergeable: false, hugepages: false, prefault: false }],
    })
    expect(mem).not.toHaveProperty('hotplug_size')
  })

  it('from-template: memory and zone shared = false (copy-on-write) (CLH fake)', () => {
    const { memory, tdir } = templateDir()
    const m = memoryConfig(input({ bootFromTemplate: true, memoryPath: memory, devicesStatePath: join(tdir, 'state.json') }))
    expect(m.shared).toBe(false)
    expect((m.zones as { shared: boolean }[])[0]!.shared).toBe(false)
  })

  it('virtio-fs with templating → the Go error; unreadable memory file → "memory file … is not accessible"; template flag checks', () => {
    const { memory, tdir } = templateDir()
    expect(() => memoryConfig(input({ bootToBeTemplate: true, memoryPath: memory, sharedFs: 'virtio-fs' }))).toThrow(VIRTIO_FS_TEMPLATE_ERROR)
    expect(() => memoryConfig(input({ bootFromTemplate: true, memoryPath: memory, devicesStatePath: 'x', sharedFs: 'virtio-fs-nydus' }))).toThrow(VIRTIO_FS_TEMPLATE_ERROR)
    expect(() => memoryConfig(input({ bootToBeTemplate: true, memoryPath: join(tdir, 'nope') }))).toThrow(`memory file ${join(tdir, 'nope')} is not accessible: ENOENT`)
    expect(() => checkTemplateConfig({ bootToBeTemplate: true, bootFromTemplate: true, memoryPath: memory })).toThrow(/Cannot set both/)
    expect(() => checkTemplateConfig({ bootToBeTemplate: true })).toThrow('Missing MemoryPath for vm template')
    expect(() => checkTemplateConfig({ bootFromTemplate: true, memoryPath: memory })).toThrow('Missing DevicesStatePath to load from vm template')
    expect(memoryConfig(input({ hotplugMemoryMiB: 1024 }))).toMatchObject({ size: 536870912, hotplug_size: 1073741824 })
  })
})

describe('SaveVM (row 36, CLH fake)', () => {
  it('snapshot to file://<dir of MemoryPath>; to-be-template config.json rewritten shared=false everywhere, mode 0600 (CLH fake)', async () => {
    const { memory, tdir } = templateDir()
    const vm = new ClhVm(input({ bootToBeTemplate: true, memoryPath: memory }), { api })
    await vm.startVm()
    await vm.pauseVm()
    await vm.saveVm()
    const snap = fake.requests.find((r) => r.path === '/api/v1/vm.snapshot')!
    expect(snap).toEqual({ method: 'PUT', path: '/api/v1/vm.snapshot', body: { destination_url: `file://${tdir}` } })
    const cfg = JSON.parse(readFileSync(join(tdir, 'config.json'), 'utf8')) as { memory: { shared: boolean; zones: { shared: boolean }[] } }
    expect(cfg.memory.shared).toBe(false)
    expect(cfg.memory.zones.map((z) => z.shared)).toEqual([false])
    expect(statSync(join(tdir, 'config.json')).mode & 0o777).toBe(0o600)
    expect(existsSync(join(tdir, 'state.json'))).toBe(true)
  })

  it('snapshot config errors: no memory, no zones, a non-object zone; numbers kept as written', () => {
    const p = join(dir, 'config.json')
    writeFileSync(p, '{"cpus":{}}')
    expect(() => rewriteSnapshotConfig(p)).toThrow('invalid snapshot config structure: memory section not found or invalid')
    writeFileSync(p, '{"memory":{"shared":true}}')
    expect(() => rewriteSnapshotConfig(p)).toThrow('invalid snapshot config structure: zones array in memory section not found or invalid')
    writeFileSync(p, '{"memory":{"shared":true,"zones":[1]}}')
    expect(() => rewriteSnapshotConfig(p)).toThrow('invalid snapshot config structure: zone in memory section not found or invalid')
    writeFileSync(p, '{"memory":{"size":0,"shared":true,"zones":[{"id":"mem0","size":18446744073709551615,"shared":true,"x":1.50}]}}')
    rewriteSnapshotConfig(p)
    expect(readFileSync(p, 'utf8')).toBe('{"memory":{"size":0,"shared":false,"zones":[{"id":"mem0","size":18446744073709551615,"shared":false,"x":1.50}]}}')
  })
})

describe('restore (rows 37 and 39, CLH fake)', () => {
  async function makeTemplate(): Promise<{ memory: string; tdir: string }> {
    const t = templateDir()
    const maker = new ClhVm(input({ id: 'template', bootToBeTemplate: true, memoryPath: t.memory }), { api })
    await maker.startVm()
    await maker.pauseVm()
    await maker.saveVm()
    await maker.stopVm()
    fake.vm = undefined
    fake.requests.length = 0
    return t
  }

  it('CreateVM marks "restoring" only when config.json, state.json and memory exist; StartVM copies, rewrites vsock, restores, stays Paused (CLH fake)', async () => {
    const { memory, tdir } = await makeTemplate()
    chmodSync(join(tdir, 'state.json'), 0o640)
    const c = input({ id: 'sb2', bootFromTemplate: true, memoryPath: memory, devicesStatePath: join(tdir, 'state.json') })
    const vm = new ClhVm(c, { api })
    vm.createVm()
    expect(vm.isRestoring).toBe(true)
    await vm.startVm()
    const vmd = join(c.vmStorePath, 'sb2')
    expect(paths()).toEqual(['PUT /api/v1/vm.restore', 'GET /api/v1/vm.info'])
    expect(fake.requests[0]!.body).toEqual({ source_url: `file://${vmd}` })
    expect(fake.vm?.state).toBe('Paused')
    // Copies keep the source mode (state.json 0640); config.json is rewritten 0600 with only vsock.socket changed.
    expect(statSync(join(vmd, 'state.json')).mode & 0o777).toBe(0o640)
    expect(statSync(join(vmd, 'config.json')).mode & 0o777).toBe(0o600)
    const orig = JSON.parse(readFileSync(join(tdir, 'config.json'), 'utf8')) as Record<string, { socket?: string }>
    const copy = JSON.parse(readFileSync(join(vmd, 'config.json'), 'utf8')) as Record<string, { socket?: string }>
    expect(copy.vsock!.socket).toBe(join(vmd, 'clh.sock'))
    expect({ ...copy, vsock: orig.vsock }).toEqual(orig)
    await vm.resumeVm()
    expect(fake.vm?.state).toBe('Running')
  })

  it('no template files → not restoring: plain vm.create + vm.boot (CLH fake)', async () => {
    const { memory, tdir } = templateDir()
    const vm = new ClhVm(input({ bootFromTemplate: true, memoryPath: memory, devicesStatePath: join(tdir, 'state.json') }), { api })
    vm.createVm()
    expect(vm.isRestoring).toBe(false)
    await vm.startVm()
    expect(paths()).toEqual(['PUT /api/v1/vm.create', 'PUT /api/v1/vm.boot'])
  })

  it('restoreVM: missing state.json / config.json in the VM dir → error naming the path, nothing sent; non-Paused state only warns (CLH fake)', async () => {
    const { memory, tdir } = await makeTemplate()
    const c = input({ id: 'sb3', bootFromTemplate: true, memoryPath: memory, devicesStatePath: join(tdir, 'state.json') })
    const lines: { msg: string; state?: string }[] = []
    const vm = new ClhVm(c, { api, logger: pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) })
    const vmd = join(c.vmStorePath, 'sb3')
    mkdirSync(vmd, { recursive: true })
    await expect(vm.restoreVm()).rejects.toThrow(`failed to access state file ${join(vmd, 'state.json')}: ENOENT`)
    writeFileSync(join(vmd, 'state.json'), '{}')
    await expect(vm.restoreVm()).rejects.toThrow(`failed to access config file ${join(vmd, 'config.json')}: ENOENT`)
    expect(fake.requests).toEqual([])

    prepareRestore(tdir, c)
    fake.failNext.set('/api/v1/vm.info', { status: 200, text: JSON.stringify({ config: {}, state: 'Running' }) })
    await vm.restoreVm()
    expect(lines.some((l) => l.msg === 'VM restored from template is not paused' && l.state === 'Running')).toBe(true)
  })

  it('restore preparation errors name the file (CLH fake)', () => {
    const { tdir } = templateDir()
    expect(() => prepareRestore(tdir, { vmStorePath: join(dir, 'vm'), id: 'x' })).toThrow(/^failed to copy config\.json: ENOENT/)
    writeFileSync(join(tdir, 'config.json'), '{}')
    expect(() => prepareRestore(tdir, { vmStorePath: join(dir, 'vm'), id: 'x' })).toThrow(/^failed to copy state\.json: ENOENT/)
    writeFileSync(join(tdir, 'state.json'), '{}')
    expect(() => prepareRestore(tdir, { vmStorePath: join(dir, 'vm'), id: 'x' })).toThrow('failed to update vsock socket path: vsock section not found')
  })
})

describe('raw JSON', () => {
  it('round-trips numbers as written', () => {
    const t = '{"a":[1,2.50,-0,1e3,18446744073709551615],"b":{"c":"x\\"y","d":null,"e":true}}'
    expect(stringifyRawJson(parseRawJson(t))).toBe(t)
    expect(() => parseRawJson('{"a":}')).toThrow(/invalid JSON/)
  })
})
