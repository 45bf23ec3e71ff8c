import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'smol-toml'
import { afterAll, describe, expect, it } from 'vitest'
import {
  AGENT_KEYS, ConfigError, configShow, DEFAULT_CONFIG_SEARCH_PATHS, defaultHypervisorConfig, defaultRuntimeConfig,
  expectedTypeName, FACTORY_KEYS, formatEffectiveConfig, formatF32, HYPERVISOR_KEYS, type KeySpec, loadConfiguration,
  parseConfiguration, resolveConfigPath, RUNTIME_KEYS,
} from './index.ts'

const HOST = { cpus: 8, memoryMiB: 16384 }
const FILE = '/test/configuration.toml'
const SHIPPED = fileURLToPath(new URL('../../../config/configuration-kataref.toml', import.meta.url))

function load(text: string, host = HOST) {
  return parseConfiguration(text, FILE, host)
}
function qemu(body: string, host = HOST) {
  return load(`[hypervisor.qemu]\n${body}\n`, host).config.hypervisor.qemu!
}
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return e as ConfigError
  }
  throw new Error('expected a ConfigError')
}

const WRONG: Record<string, string> = { bool: '"yes"', string: '7', u32: '-1', float: '"1"', 'string[]': '[1]' }
function sampleGood(type: string): string {
  return ({ bool: 'true', string: '"x"', u32: '128', float: '1.5', 'string[]': '["force_guest_pull"]' } as Record<string, string>)[type]!
}

describe('serde defaults (key absent) and type errors, every key', () => {
  const groups: [string, string, readonly KeySpec<never>[]][] = [
    ['runtime', '[runtime]', RUNTIME_KEYS as never],
    ['hypervisor.qemu', '[hypervisor.qemu]', HYPERVISOR_KEYS as never],
    ['hypervisor.qemu.factory', '[hypervisor.qemu.factory]', FACTORY_KEYS as never],
    ['agent.kata', '[agent.kata]', AGENT_KEYS as never],
  ]
  for (const [section, header, specs] of groups) {
    for (const spec of specs) {
      it(`${section}.${spec.key}: wrong type → error naming file, key and expected type`, () => {
        const e = errorOf(() => load(`${header}\n${spec.key} = ${WRONG[spec.type]}\n`))
        expect(e.message).toContain(FILE)
        expect(e.message).toContain(`[${section}] ${spec.key}`)
        expect(e.message).toContain(`expected ${expectedTypeName(spec.type)}`)
      })
      it(`${section}.${spec.key}: a value of the right type is accepted`, () => {
        if (spec.key === 'hypervisor_name' || spec.key === 'agent_name' || spec.key === 'emptydir_mode' ||
          spec.key === 'block_device_driver' || spec.key === 'block_device_aio') return // validated below
        expect(() => load(`${header}\n${spec.key} = ${sampleGood(spec.type)}\n`)).not.toThrow()
      })
    }
  }

  it('runtime serde defaults', () => {
    const rt = load('').config.runtime
    expect(rt).toEqual(defaultRuntimeConfig())
    expect(rt).toMatchObject({
      staticSandboxResourceMgmt: false, danConf: '', experimental: [], enableDebug: false, logLevel: 'info',
      disableGuestEmptyDir: true, emptydirMode: 'shared-fs', hypervisorName: '', agentName: '', experimentalForceGuestPull: false,
    })
  })
  it('hypervisor serde defaults, after adjust', () => {
    const hv = qemu('')
    expect(hv).toEqual({
      ...defaultHypervisorConfig('qemu'),
      defaultVcpus: 1, defaultMaxvcpus: 8, defaultMemory: 128, defaultMaxmemory: 16384,
      blockDeviceDriver: 'virtio-blk-pci', blockDeviceAio: 'io_uring',
      factory: { enableTemplate: false, templatePath: '/run/vc/vm/template' },
    })
    expect(hv.overheadVcpus).toBe(0)
    expect(hv.overheadMemory).toBe(0)
    expect(hv.enableDebug).toBe(false)
    expect(hv.logLevel).toBe('info')
  })
  it('agent serde defaults', () => {
    expect(load('[agent.kata]\n').config.agent.kata).toEqual({ name: 'kata', enableDebug: false, logLevel: 'info', kernelModules: [] })
  })
  it('u32 keys reject floats (1.0 is not an integer in TOML) and values above u32', () => {
    expect(errorOf(() => qemu('default_memory = 2048.0')).message).toContain('got float 2048')
    expect(errorOf(() => qemu('default_memory = 4294967296')).message).toContain('expected integer in 0..4294967295')
  })
  it('float keys accept integers and are stored as f32', () => {
    expect(qemu('default_vcpus = 2').defaultVcpus).toBe(2)
    expect(qemu('overhead_vcpus = 0.2').overheadVcpus).toBe(Math.fround(0.2))
    expect(errorOf(() => qemu('overhead_vcpus = inf')).message).toContain('[hypervisor.qemu] overhead_vcpus')
  })
})

describe('adjust / validate (§11)', () => {
  it('default_vcpus: 0 → 1; < 0 or > host → host CPUs; then lowered to default_maxvcpus', () => {
    expect(qemu('default_vcpus = 0').defaultVcpus).toBe(1)
    expect(qemu('default_vcpus = -1').defaultVcpus).toBe(8)
    expect(qemu('default_vcpus = 12').defaultVcpus).toBe(8)
    expect(qemu('default_vcpus = 1.5').defaultVcpus).toBe(1.5)
    expect(qemu('default_vcpus = 6\ndefault_maxvcpus = 4').defaultVcpus).toBe(4)
  })
  it('default_maxvcpus: 0 or > host → host CPUs', () => {
    expect(qemu('default_maxvcpus = 0').defaultMaxvcpus).toBe(8)
    expect(qemu('default_maxvcpus = 9').defaultMaxvcpus).toBe(8)
    expect(qemu('default_maxvcpus = 3').defaultMaxvcpus).toBe(3)
  })
  it('QEMU 256-vCPU cap bites only on hosts with more CPUs', () => {
    const big = { cpus: 512, memoryMiB: 16384 }
    expect(errorOf(() => qemu('default_vcpus = 300\ndefault_maxvcpus = 300', big)).message).toContain('[hypervisor.qemu] default_vcpus')
    expect(errorOf(() => qemu('default_vcpus = 2\ndefault_maxvcpus = 300', big)).message).toContain('[hypervisor.qemu] default_maxvcpus')
  })
  it('default_memory: 0 → 128; > host RAM → host RAM; QEMU < 64 → error', () => {
    expect(qemu('default_memory = 0').defaultMemory).toBe(128)
    expect(qemu('default_memory = 99999').defaultMemory).toBe(16384)
    expect(errorOf(() => qemu('default_memory = 63')).message).toBe(
      `${FILE}: [hypervisor.qemu] default_memory: Qemu hypervisor has minimal memory limitation 64`)
    expect(qemu('default_memory = 64').defaultMemory).toBe(64)
  })
  it('kataref deviation (issue 6): static_sandbox_resource_mgmt keeps default_memory 0 (no fallback) instead of 128', () => {
    const on = load('[runtime]\nstatic_sandbox_resource_mgmt = true\n[hypervisor.qemu]\ndefault_memory = 0\n').config
    expect(on.hypervisor.qemu!.defaultMemory).toBe(0)
    const off = load('[runtime]\nstatic_sandbox_resource_mgmt = false\n[hypervisor.qemu]\ndefault_memory = 0\n').config
    expect(off.hypervisor.qemu!.defaultMemory).toBe(128)
    // Only 0 is special: other values are still clamped and validated with static sizing on.
    expect(errorOf(() => load('[runtime]\nstatic_sandbox_resource_mgmt = true\n[hypervisor.qemu]\ndefault_memory = 63\n')).message).toContain('minimal memory limitation 64')
    expect(load('[runtime]\nstatic_sandbox_resource_mgmt = true\n[hypervisor.qemu]\ndefault_memory = 99999\n').config.hypervisor.qemu!.defaultMemory).toBe(16384)
  })
  it('default_memory 0 for a hypervisor without the 128 MiB default → zero error', () => {
    expect(errorOf(() => load('[hypervisor.remote]\ndefault_memory = 0\n')).message).toContain('Configured memory size for guest VM is zero')
  })
  it('default_maxmemory: 0 or > host RAM → host RAM', () => {
    expect(qemu('default_maxmemory = 0').defaultMaxmemory).toBe(16384)
    expect(qemu('default_maxmemory = 20000').defaultMaxmemory).toBe(16384)
    expect(qemu('default_maxmemory = 4096').defaultMaxmemory).toBe(4096)
  })
  it('block_device_driver: "" → virtio-blk-pci; mmio rejected by QEMU; foo unsupported; disable_block_device_use clears it (§14.16)', () => {
    expect(qemu('block_device_driver = ""').blockDeviceDriver).toBe('virtio-blk-pci')
    for (const d of ['virtio-blk-pci', 'virtio-blk-ccw', 'virtio-pmem', 'virtio-scsi']) expect(qemu(`block_device_driver = "${d}"`).blockDeviceDriver).toBe(d)
    expect(errorOf(() => qemu('block_device_driver = "virtio-blk-mmio"')).message).toContain("Qemu doesn't support virtio-blk-mmio")
    expect(load('[hypervisor.firecracker]\nblock_device_driver = "virtio-blk-mmio"\n').config.hypervisor.firecracker!.blockDeviceDriver).toBe('virtio-blk-mmio')
    expect(errorOf(() => qemu('block_device_driver = "foo"')).message).toBe(`${FILE}: [hypervisor.qemu] block_device_driver: foo is unsupported block device type.`)
    expect(qemu('block_device_driver = "foo"\ndisable_block_device_use = true').blockDeviceDriver).toBe('')
  })
  it('block_device_aio: "" → io_uring; io_uring/native/threads; else error', () => {
    expect(qemu('').blockDeviceAio).toBe('io_uring')
    for (const a of ['io_uring', 'native', 'threads']) expect(qemu(`block_device_aio = "${a}"`).blockDeviceAio).toBe(a)
    expect(errorOf(() => qemu('block_device_aio = "posix"')).message).toContain('[hypervisor.qemu] block_device_aio: posix is unsupported')
  })
  it('factory: enable_template parses; unknown key is an error; empty template_path → /run/vc/vm/template (§14.15)', () => {
    const hv = load('[hypervisor.qemu.factory]\nenable_template = true\n').config.hypervisor.qemu!
    expect(hv.factory).toEqual({ enableTemplate: true, templatePath: '/run/vc/vm/template' })
    const e = errorOf(() => load('[hypervisor.qemu.factory]\nenable_template = true\nvm_cache_number = 2\n'))
    expect(e.message).toContain(`${FILE}: [hypervisor.qemu.factory] vm_cache_number: unknown key`)
    expect(load('[hypervisor.qemu.factory]\ntemplate_path = "/x"\n').config.hypervisor.qemu!.factory.templatePath).toBe('/x')
  })
  it('unknown keys elsewhere are accepted with a warning; runtime.disable_guest_empty_dir is modelled', () => {
    const { warnings, config } = load('[runtime]\nsandbox_cgroup_only = true\n[hypervisor.qemu]\nfoo = 1\n[agent.kata]\nbar = "x"\n[factory]\nenable_template = true\n')
    expect(warnings).toEqual(expect.arrayContaining([
      `${FILE}: [runtime] sandbox_cgroup_only: unknown key ignored`,
      `${FILE}: [hypervisor.qemu] foo: unknown key ignored`,
      `${FILE}: [agent.kata] bar: unknown key ignored`,
      expect.stringContaining(`${FILE}: [factory]: unknown section ignored`),
    ]))
    expect(config.runtime.disableGuestEmptyDir).toBe(true)
    expect(load('[runtime]\ndisable_guest_empty_dir = false\n').config.runtime.disableGuestEmptyDir).toBe(false)
  })
  it('emptydir_mode must be shared-fs, block-encrypted or block-plain', () => {
    expect(load('[runtime]\nemptydir_mode = "block-plain"\n').config.runtime.emptydirMode).toBe('block-plain')
    expect(errorOf(() => load('[runtime]\nemptydir_mode = "tmpfs"\n')).message).toContain('[runtime] emptydir_mode')
  })
  it('experimental: unknown feature names produce a warning listing the known ones', () => {
    const { config, warnings } = load('[runtime]\nexperimental = ["force_guest_pull", "foo"]\n')
    expect(config.runtime.experimental).toEqual(['force_guest_pull', 'foo'])
    expect(warnings).toEqual([`${FILE}: [runtime] experimental: unknown experimental feature "foo" ignored; known features: force_guest_pull`])
  })
  it('unknown log_level strings warn (they mean info)', () => {
    expect(load('[runtime]\nlog_level = "verbose"\n').warnings[0]).toContain('[runtime] log_level: unknown level "verbose"')
  })
  it('hypervisor_name / agent_name: picked when exactly one section, error when naming a missing one', () => {
    const { config } = load('[hypervisor.qemu]\n[agent.kata]\n')
    expect(config.runtime.hypervisorName).toBe('qemu')
    expect(config.runtime.agentName).toBe('kata')
    expect(errorOf(() => load('[runtime]\nhypervisor_name = "clh"\n[hypervisor.qemu]\n')).message).toContain('[runtime] hypervisor_name: no [hypervisor.clh] section')
  })
  it('section of the wrong shape and TOML syntax errors name the file', () => {
    expect(errorOf(() => load('runtime = 1\n')).message).toBe(`${FILE}: [runtime]: expected table, got integer 1`)
    expect(errorOf(() => load('hypervisor = { qemu = 1 }\n')).message).toContain('[hypervisor.qemu]: expected table')
    expect(errorOf(() => load('[runtime\n')).message).toMatch(/^\/test\/configuration\.toml: invalid TOML at line 1/)
  })
})

describe('shipped config/configuration-kataref.toml (QEMU profile, §6.3 / §11)', () => {
  const { config, path, warnings } = loadConfiguration({ path: SHIPPED, host: HOST })
  it('loads without warnings', () => {
    expect(path).toBe(SHIPPED)
    expect(warnings).toEqual([])
  })
  it('carries the runtime-rs QEMU template values', () => {
    const hv = config.hypervisor.qemu!
    expect(config.runtime).toMatchObject({
      staticSandboxResourceMgmt: true, danConf: '/run/kata-containers/dans', experimental: [], hypervisorName: 'qemu', enableDebug: false,
    })
    expect(hv).toMatchObject({
      defaultVcpus: 1, defaultMemory: 2048, overheadVcpus: Math.fround(0.2), overheadMemory: 32,
      blockDeviceDriver: 'virtio-scsi', blockDeviceAio: 'io_uring', enableDebug: false,
      factory: { enableTemplate: false, templatePath: '/run/vc/vm/template' },
    })
    expect(config.agent.kata!.enableDebug).toBe(false)
  })
  it('formatEffectiveConfig round-trips and prints f32 values shortest', () => {
    const text = formatEffectiveConfig(config)
    expect(text).toContain('overhead_vcpus = 0.2\n')
    expect(text).toContain('default_vcpus = 1.0\n')
    expect(text).toContain('[hypervisor.qemu.factory]\n')
    expect(parse(text)).toBeTruthy()
    expect(parseConfiguration(text, 'shown.toml', HOST).config).toEqual(config)
  })
})

describe('file selection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kataref-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const a = join(dir, 'a.toml')
  const b = join(dir, 'b.toml')
  writeFileSync(a, '[hypervisor.qemu]\ndefault_memory = 512\n')
  writeFileSync(b, '[hypervisor.qemu]\ndefault_memory = 1024\n')
  it('runtime-rs search list', () => {
    expect(DEFAULT_CONFIG_SEARCH_PATHS).toEqual([
      '/etc/kata-containers/runtime-rs/configuration.toml',
      '/usr/share/defaults/kata-containers/runtime-rs/configuration.toml',
      '/opt/kata/share/defaults/kata-containers/runtime-rs/configuration.toml',
    ])
  })
  it('explicit path > KATA_CONF_FILE > first existing search path', () => {
    expect(resolveConfigPath({ path: a, env: { KATA_CONF_FILE: b }, searchPaths: [b] })).toBe(a)
    expect(resolveConfigPath({ env: { KATA_CONF_FILE: b }, searchPaths: [a] })).toBe(b)
    expect(resolveConfigPath({ env: {}, searchPaths: [join(dir, 'missing.toml'), b, a] })).toBe(b)
    expect(loadConfiguration({ env: { KATA_CONF_FILE: b }, host: HOST }).config.hypervisor.qemu!.defaultMemory).toBe(1024)
  })
  it('nothing found / unreadable → error naming the places looked at', () => {
    expect(() => resolveConfigPath({ env: {}, searchPaths: [join(dir, 'x.toml')] })).toThrow(/KATA_CONF_FILE unset, none of .*x\.toml exists/)
    expect(() => loadConfiguration({ path: join(dir, 'nope.toml') })).toThrow(/nope\.toml: cannot read configuration file/)
  })
})

describe('configShow', () => {
  function run(argv: string[], env: Record<string, string> = {}) {
    let out = ''
    let err = ''
    const code = configShow(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env, load: { host: HOST } })
    return { code, out, err }
  }
  it('prints the effective config of --config and returns 0', () => {
    const r = run(['--config', SHIPPED])
    expect(r.code).toBe(0)
    expect(r.out).toContain(`# effective configuration loaded from ${SHIPPED}`)
    expect(r.out).toContain('static_sandbox_resource_mgmt = true')
    expect(r.err).toBe('')
  })
  it('uses KATA_CONF_FILE; errors → 1 with the message; bad args → 2', () => {
    expect(run([], { KATA_CONF_FILE: SHIPPED }).code).toBe(0)
    const bad = run(['--config', '/nonexistent/c.toml'])
    expect(bad.code).toBe(1)
    expect(bad.err).toContain('/nonexistent/c.toml: cannot read configuration file')
    expect(run(['--bogus']).code).toBe(2)
    expect(run(['--config']).code).toBe(2)
    expect(run(['--help']).out).toContain('usage: kataref config show')
  })
})

describe('formatF32', () => {
  it('prints the shortest decimal that reads back as the same f32', () => {
    expect(formatF32(Math.fround(0.2))).toBe('0.2')
    expect(formatF32(Math.fround(0.5) + Math.fround(1.2))).toBe('1.7')
    expect(formatF32(3)).toBe('3')
  })
})
