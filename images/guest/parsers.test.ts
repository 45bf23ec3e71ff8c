import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { AGENT_PORT_NAME, DEBUG_PORT_NAME } from '../../impl/runtime/hypervisor/qemu/cmdline.ts'
import { defaultMetaPackage, parseAptDepends, parseAptVersion } from './kernel.ts'
import { parseLdd, uuidFromHash } from './rootfs.ts'
import * as scripts from './scripts.ts'

describe('apt output parsing', () => {
  it('finds Depends lines (Debian meta package)', () => {
    expect(parseAptDepends('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toEqual(['linux-image-6.1.0-56-amd64'])
  })
  it('keeps alternatives and skips virtual <pkg> names (Ubuntu meta package)', () => {
    const text = 'linux-image-generic\n  Depends: linux-image-6.8.0-49-generic\n  Depends: linux-modules-extra-6.8.0-49-generic\n |Depends: linux-firmware\n  Depends: <intel-microcode>\n'
    expect(parseAptDepends(text)).toEqual(['linux-image-6.8.0-49-generic', 'linux-modules-extra-6.8.0-49-generic', 'linux-firmware'])
  })
  it('reads the first Version field', () => {
    expect(parseAptVersion('Package: x\nVersion: 6.1.192-2\nArchitecture: amd64\n\nVersion: 1\n')).toBe('6.1.192-2')
  })
  it('picks the meta package by distribution', () => {
    const saved = process.env.KATAREF_KERNEL_PACKAGE
    delete process.env.KATAREF_KERNEL_PACKAGE
    try {
      expect(defaultMetaPackage('debian')).toBe('linux-image-amd64')
      expect(defaultMetaPackage('ubuntu')).toBe('linux-image-generic')
    } finally {
      if (saved !== undefined) process.env.KATAREF_KERNEL_PACKAGE = saved
    }
  })
})

describe('ldd output parsing', () => {
  it('lists resolved libraries and the loader, not the vdso', () => {
    const text = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f)',
    ].join('\n')
    expect(parseLdd(text)).toEqual(['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'])
  })
})

describe('rootfs uuid', () => {
  it('is a fixed, well-formed UUID per hash', () => {
    const u = uuidFromHash('0123456789abcdef0123456789abcdef0123')
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(uuidFromHash('0123456789abcdef0123456789abcdef0123')).toBe(u)
  })
})

describe('guest scripts', () => {
  it('agree with the QEMU side on port names', () => {
    expect(scripts.DEFAULT_AGENT_PORT).toBe(AGENT_PORT_NAME)
    expect(scripts.DEFAULT_DEBUG_PORT).toBe(DEBUG_PORT_NAME)
  })
  for (const name of ['INITRAMFS_INIT', 'BARE_INIT', 'RC_SYSINIT', 'DEBUG_SHELL', 'AGENT_RUN'] as const) {
    it(`${name} parses with busybox sh -n`, () => {
      execFileSync('busybox', ['sh', '-n'], { input: scripts[name] })
    })
  }
  it('inittab respawns the debug shell and the agent after sysinit', () => {
    expect(scripts.INITTAB).toMatch(/^::sysinit:\/usr\/lib\/kataref\/rc\.sysinit$/m)
    expect(scripts.INITTAB).toMatch(/^::respawn:\/usr\/lib\/kataref\/debug-shell$/m)
    expect(scripts.INITTAB).toMatch(/^::respawn:\/usr\/lib\/kataref\/agent-run$/m)
    expect(scripts.AGENT_RUN).toContain('node /usr/lib/kataref/agent.mjs --channel "vport:$name"')
  })
})
