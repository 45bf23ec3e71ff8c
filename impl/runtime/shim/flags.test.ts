import { describe, expect, it } from 'vitest'
import { FlagError, parseShimFlags, shimSocketAddress } from './flags.ts'

describe('shim flags (Go flag syntax)', () => {
  it('parses containerd 1.6 start invocation, with -debug before the action', () => {
    const f = parseShimFlags(['-namespace', 'default', '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'test', '-debug', 'start'])
    expect(f).toMatchObject({ namespace: 'default', address: '/run/containerd/containerd.sock', publishBinary: '/usr/bin/containerd', id: 'test', debug: true, action: 'start' })
  })
  it('accepts --name, -name=value, -debug=false, -bundle/-socket; no action = daemon', () => {
    const f = parseShimFlags(['--namespace=k8s.io', '-id=x', '-debug=false', '-bundle', '/b', '-socket', 'unix:///s'])
    expect(f).toMatchObject({ namespace: 'k8s.io', id: 'x', debug: false, bundle: '/b', socket: 'unix:///s', action: '' })
  })
  it('delete action with trailing args; unknown flags and missing values are errors', () => {
    expect(parseShimFlags(['-id', 'a', 'delete', 'extra'])).toMatchObject({ action: 'delete', rest: ['extra'] })
    expect(() => parseShimFlags(['-bogus', 'x'])).toThrow(FlagError)
    expect(() => parseShimFlags(['-id'])).toThrow(/needs an argument/)
  })
  it('socket address: unix:///run/containerd/s/ + sha256 of <address>/<ns>/<id>', () => {
    // sha256("/run/containerd/containerd.sock/default/test")
    const a = shimSocketAddress('/run/containerd/containerd.sock', 'default', 'test', '/run/containerd/s')
    expect(a).toBe('unix:///run/containerd/s/cfa94b04d543b3f64f78eff8125c7a7cd0903173f673d87367be72ff09fc92c2')
    expect(a).toBe(shimSocketAddress('/run/containerd/containerd.sock/', 'default', 'test', '/run/containerd/s'))
    expect(a.length - 'unix://'.length).toBeLessThan(106)
  })
})
