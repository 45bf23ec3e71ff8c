import { describe, expect, it } from 'vitest'
import { defaultAgentConfig, defaultHypervisorConfig, makeConfig } from '../../types/config/index.ts'
import { containerdDebugRequested, effectiveLogLevel, resolveLogLevels, shimBaseLevel, toPinoLevel } from './log-level.ts'

describe('§8 effective_log_level (§14.14)', () => {
  it.each([
    [false, 'info', 'info'],
    [false, 'debug', 'debug'],
    [true, 'info', 'debug'],
    [true, 'trace', 'trace'],
    [true, 'warn', 'warn'],
    [false, 'critical', 'critical'],
    [false, 'verbose', 'info'],
    [true, 'verbose', 'info'],
    [false, '', 'info'],
  ] as const)('(%s, %j) → %s', (enableDebug, level, want) => {
    expect(effectiveLogLevel(enableDebug, level)).toBe(want)
  })
  it('critical maps to pino fatal', () => {
    expect(toPinoLevel('critical')).toBe('fatal')
    expect(toPinoLevel('debug')).toBe('debug')
  })
})

describe('shim base level: info unless containerd passed -debug (Go 631fd96715: Warn → Info)', () => {
  it('containerd shim argv', () => {
    expect(containerdDebugRequested(['-namespace', 'k8s.io', '-address', '/run/containerd/containerd.sock', '-id', 'abc', 'start'])).toBe(false)
    expect(containerdDebugRequested(['-namespace', 'k8s.io', '-debug', '-id', 'abc', 'start'])).toBe(true)
    expect(containerdDebugRequested(['--debug'])).toBe(true)
    expect(containerdDebugRequested(['-debug=false'])).toBe(false)
    expect(containerdDebugRequested(['-debug=true'])).toBe(true)
    expect(containerdDebugRequested(['-debugger'])).toBe(false)
  })
  it('base level', () => {
    expect(shimBaseLevel(false)).toBe('info')
    expect(shimBaseLevel(true)).toBe('debug')
  })
})

describe('per component', () => {
  it('defaults: everything info', () => {
    const cfg = makeConfig(defaultHypervisorConfig('qemu'))
    expect(resolveLogLevels(cfg)).toEqual({ shim: 'info', runtimes: 'info', hypervisor: 'info', agent: 'info' })
  })
  it('each section decides its own component', () => {
    const cfg = makeConfig(defaultHypervisorConfig('qemu', { enableDebug: true }), { enableDebug: false, logLevel: 'warn' })
    cfg.agent.kata = defaultAgentConfig('kata', { logLevel: 'trace' })
    expect(resolveLogLevels(cfg, true)).toEqual({ shim: 'debug', runtimes: 'warn', hypervisor: 'debug', agent: 'trace' })
  })
  it('runtime enable_debug alone raises only runtimes', () => {
    const cfg = makeConfig(defaultHypervisorConfig('qemu'), { enableDebug: true })
    expect(resolveLogLevels(cfg)).toEqual({ shim: 'info', runtimes: 'debug', hypervisor: 'info', agent: 'info' })
  })
})
