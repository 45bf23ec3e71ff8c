// Template dir (row 35), HandleFactory fallback and config mismatch (row 34, §7.1) without a VM.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { LOAD_FACTORY_FAILED, loadFactory, planSandboxBoot, TEMPLATE_MISMATCH } from './factory.ts'
import { checkQemuTemplate, configMismatch, normalizeTemplateConfig, TemplateMismatchError, TemplateNotFoundError, type QemuTemplateMeta } from './qemu-template.ts'
import { destroyTemplateDirSync, isMountPoint, prepareTemplateDir, templateExists, templatePaths, tmpfsOptions, writeTemplateMeta } from './template-dir.ts'

const dirs: string[] = []
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kataref-factory-unit-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) {
    destroyTemplateDirSync(join(d, 'template'))
    rmSync(d, { recursive: true, force: true })
  }
})

function recorder() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = []
  return { lines, logger: pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) }
}

function fakeVmFiles(d: string) {
  const kernel = join(d, 'vmlinux')
  const initrd = join(d, 'initrd')
  writeFileSync(kernel, 'k')
  writeFileSync(initrd, 'i')
  return { kernel, initrd, memoryMiB: 256, smp: 1, accel: 'tcg' as const, binary: 'qemu-system-x86_64' }
}

describe('template dir (spec §7.1, row 35)', () => {
  it('tmpfs size is memory + 8 MiB, nosuid,nodev', () => {
    expect(tmpfsOptions(512)).toBe('nosuid,nodev,size=520M')
    expect(() => tmpfsOptions(0)).toThrow(/positive integer/)
  })

  it('memory file truncated to exactly the VM size; template exists only once memory and state both exist', async () => {
    const d = join(tmp(), 'template')
    const prep = await prepareTemplateDir(d, { memoryMiB: 512, mount: false })
    prep.release()
    expect(statSync(prep.paths.memory).size).toBe(536870912)
    expect(statSync(d).mode & 0o777).toBe(0o700)
    expect(templateExists(d)).toBe(false)
    writeFileSync(prep.paths.state, 'x')
    expect(templateExists(d)).toBe(true)
    expect(templatePaths(d, 'clh').state).toBe(join(d, 'state.json'))
    expect(templateExists(d, 'clh')).toBe(false)
    await expect(prepareTemplateDir(d, { memoryMiB: 512, mount: false })).rejects.toThrow(`There is already a VM template in ${d}`)
  })

  it.skipIf(process.getuid?.() !== 0)('as root: mounts a tmpfs of size=520M for 512 MiB; destroy unmounts and removes', async () => {
    const d = join(tmp(), 'template')
    const prep = await prepareTemplateDir(d, { memoryMiB: 512 })
    prep.release()
    expect(prep.mounted).toBe(true)
    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === d)!
    expect(line).toMatch(/^tmpfs .* rw,nosuid,nodev,.*size=532480k/)
    expect(statSync(prep.paths.memory).size).toBe(536870912)
    destroyTemplateDirSync(d)
    expect(isMountPoint(d)).toBe(false)
    expect(existsSync(d)).toBe(false)
  })
})

describe('HandleFactory (row 34) and config check', () => {
  it('enable_template off: no factory, nothing logged', () => {
    const r = recorder()
    expect(loadFactory({ enableTemplate: false, templatePath: '/nonexistent' }, r.logger)).toBeUndefined()
    expect(r.lines).toEqual([])
  })

  it('enable_template on, no template: one warning "load vm factory failed, will use direct boot", no dir created', () => {
    const d = join(tmp(), 'template')
    const r = recorder()
    const vm = fakeVmFiles(dirs[0]!)
    const plan = planSandboxBoot({ enableTemplate: true, templatePath: d }, vm, r.logger)
    expect(plan).toEqual({ kind: 'direct', reason: LOAD_FACTORY_FAILED })
    expect(r.lines.filter((l) => l.msg === LOAD_FACTORY_FAILED)).toHaveLength(1)
    expect(r.lines[0]!.level).toBe(40)
    expect(existsSync(d)).toBe(false)
  })

  it('a matching template is used; a different one gives direct boot naming the fields', async () => {
    const root = tmp()
    const d = join(root, 'template')
    const vm = fakeVmFiles(root)
    const prep = await prepareTemplateDir(d, { memoryMiB: 1, mount: false })
    prep.release()
    writeFileSync(prep.paths.state, 's')
    const meta: QemuTemplateMeta = { kataref: 1, hypervisor: 'qemu', createdAt: 'now', config: normalizeTemplateConfig(vm) }
    writeTemplateMeta(prep.paths, meta)
    expect(planSandboxBoot({ enableTemplate: true, templatePath: d }, vm)).toEqual({ kind: 'template', templatePath: d })

    const r = recorder()
    const plan = planSandboxBoot({ enableTemplate: true, templatePath: d }, { ...vm, smp: 2, append: 'x' }, r.logger)
    expect(plan.kind).toBe('direct')
    expect(r.lines.filter((l) => l.msg === TEMPLATE_MISMATCH)).toHaveLength(1)
    expect(() => checkQemuTemplate(d, { ...vm, smp: 2, append: 'x' })).toThrow(TemplateMismatchError)
    expect(() => checkQemuTemplate(d, { ...vm, smp: 2, append: 'x', initrd: vm.kernel })).toThrow(/different config \(append, initrd\)/)

    // Size is not part of the match (Go blanks it): a smaller request uses the template at the
    // template's size; a larger one cannot grow the clone here, so direct boot.
    expect(checkQemuTemplate(d, { ...vm, memoryMiB: 128 }).config.memoryMiB).toBe(256)
    expect(() => checkQemuTemplate(d, { ...vm, smp: 2 })).toThrow(`VM template in ${d} is smaller than this sandbox needs and cannot grow (vCPUs 2 > template 1)`)
    expect(() => checkQemuTemplate(d, { ...vm, memoryMiB: 1024 })).toThrow(/memory 1024 MiB > template 256 MiB/)

    // A rebuilt kernel (new inode or size) is a mismatch; a touch (mtime only) is not.
    const now = new Date()
    const { utimesSync } = await import('node:fs')
    utimesSync(vm.kernel, now, new Date(now.getTime() + 60_000))
    expect(configMismatch(meta.config, normalizeTemplateConfig(vm))).toEqual([])
    rmSync(vm.kernel)
    writeFileSync(vm.kernel, 'kk')
    expect(configMismatch(meta.config, normalizeTemplateConfig(vm))).toEqual(['kernel'])

    rmSync(prep.paths.state)
    expect(() => checkQemuTemplate(d, vm)).toThrow(TemplateNotFoundError)
  })
})
