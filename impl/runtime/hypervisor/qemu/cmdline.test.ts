import { describe, expect, it } from 'vitest'
import { buildQemuArgs, kernelCmdline, runDirPaths, type QemuConfig } from './cmdline.ts'

const base: QemuConfig = {
  accel: 'tcg',
  smp: 2,
  memoryMiB: 512,
  kernel: '/k/vmlinuz',
  initrd: '/k/initrd.gz',
  append: 'console=ttyS0',
  rootfs: { path: '/img/rootfs.erofs' },
  paths: runDirPaths('/run/vm1'),
}

function optAfter(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []))
}

describe('buildQemuArgs', () => {
  it('selects machine, cpu, smp and memory', () => {
    const a = buildQemuArgs(base)
    expect(optAfter(a, '-machine')).toEqual(['q35,accel=tcg'])
    expect(optAfter(a, '-cpu')).toEqual(['max'])
    expect(optAfter(a, '-smp')).toEqual(['2'])
    expect(optAfter(a, '-m')).toEqual(['512M'])
    expect(a).toContain('-nodefaults')
    expect(a).toContain('-nographic')
    expect(a).toContain('-no-reboot')
    expect(optAfter(buildQemuArgs({ ...base, accel: 'kvm' }), '-cpu')).toEqual(['host'])
    expect(optAfter(buildQemuArgs({ ...base, accel: 'kvm', cpu: 'max' }), '-cpu')).toEqual(['max'])
    expect(buildQemuArgs({ ...base, noReboot: false })).not.toContain('-no-reboot')
  })

  it('passes kernel, initrd and append', () => {
    const a = buildQemuArgs(base)
    expect(optAfter(a, '-kernel')).toEqual(['/k/vmlinuz'])
    expect(optAfter(a, '-initrd')).toEqual(['/k/initrd.gz'])
    expect(optAfter(a, '-append')).toEqual(['console=ttyS0'])
    expect(buildQemuArgs({ ...base, initrd: undefined })).not.toContain('-initrd')
  })

  it('attaches the rootfs as a read-only virtio-blk disk', () => {
    const a = buildQemuArgs(base)
    expect(optAfter(a, '-drive')).toEqual(['file=/img/rootfs.erofs,if=none,id=rootfs,format=raw,readonly=on'])
    expect(optAfter(a, '-device')).toContain('virtio-blk-pci,drive=rootfs,id=rootfs-dev')
  })

  it('escapes commas in paths', () => {
    const a = buildQemuArgs({ ...base, rootfs: { path: '/img/a,b.erofs' } })
    expect(optAfter(a, '-drive')[0]).toContain('file=/img/a,,b.erofs,')
  })

  it('wires the two virtio-serial ports, the QMP socket (last) and the serial log', () => {
    const a = buildQemuArgs(base)
    const chardevs = optAfter(a, '-chardev')
    expect(chardevs).toEqual([
      'file,id=serial0,path=/run/vm1/console.log',
      'socket,id=agent,path=/run/vm1/agent.sock,server=on,wait=off',
      'socket,id=debug,path=/run/vm1/debug.sock,server=on,wait=off',
      'socket,id=qmpctl,path=/run/vm1/qmp-control.sock,server=on,wait=off',
      'socket,id=qmp,path=/run/vm1/qmp.sock,server=on,wait=off',
    ])
    const devices = optAfter(a, '-device')
    expect(devices).toContain('virtio-serial-pci,id=vser0')
    expect(devices).toContain('virtserialport,bus=vser0.0,chardev=agent,name=kataref.agent.0')
    expect(devices).toContain('virtserialport,bus=vser0.0,chardev=debug,name=kataref.debug.0')
    expect(optAfter(a, '-serial')).toEqual(['chardev:serial0'])
    expect(optAfter(a, '-mon')).toEqual(['chardev=qmpctl,mode=control', 'chardev=qmp,mode=control'])
  })

  it('adds 9p shares and extra disks', () => {
    const a = buildQemuArgs({ ...base, shares: [{ path: '/', mountTag: 'hostroot' }], disks: [{ path: '/d.img', readOnly: false, serial: 'x1' }] })
    expect(optAfter(a, '-fsdev')).toEqual(['local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap'])
    expect(optAfter(a, '-device')).toContain('virtio-9p-pci,fsdev=fs0,mount_tag=hostroot')
    expect(optAfter(a, '-drive')).toContain('file=/d.img,if=none,id=disk0,format=raw,readonly=off')
    expect(optAfter(a, '-device')).toContain('virtio-blk-pci,drive=disk0,id=disk0-dev,serial=x1')
  })

  it('rejects bad sizes', () => {
    expect(() => buildQemuArgs({ ...base, smp: 0 })).toThrow(/smp/)
    expect(() => buildQemuArgs({ ...base, memoryMiB: 1.5 })).toThrow(/memoryMiB/)
  })
})

describe('kernelCmdline', () => {
  it('names the console, the ports and the root device', () => {
    const c = kernelCmdline()
    expect(c).toContain('console=ttyS0')
    expect(c).toContain('kataref.root=/dev/vda')
    expect(c).toContain('kataref.debug_port=kataref.debug.0')
    expect(c).toContain('kataref.agent_port=kataref.agent.0')
    expect(c).toContain('cgroup_no_v1=all')
    expect(c).not.toContain('kataref.agent=0')
    expect(kernelCmdline({ agent: false, quiet: false })).toContain('kataref.agent=0')
    expect(kernelCmdline({ quiet: false }).split(' ')).not.toContain('quiet')
  })
})
