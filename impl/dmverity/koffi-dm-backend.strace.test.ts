// The real koffi ioctl path, checked by an independent decoder: run the KoffiDmBackend against
// /dev/null (the host has no device-mapper, so every ioctl fails ENOTTY after the kernel saw it)
// under `strace -v`, and compare strace's decoding of each struct dm_ioctl with the spec (§9, B18–B20).
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p))
const run = promisify(execFile)

describe.runIf(strace)('KoffiDmBackend under strace', () => {
  it('sends byte-exact DM ioctls that strace decodes as CREATE/TABLE_LOAD/SUSPEND/STATUS/REMOVE', async (ctx) => {
    const dir = await mkdtemp(join(tmpdir(), 'kataref-strace-'))
    try {
      const index = fileURLToPath(new URL('./index.ts', import.meta.url))
      const script = join(dir, 'run.mts')
      await writeFile(script, `
import { KoffiDmBackend, DmClient, dmOptionsReadOnlyNoUdev, dmOptionsNoUdev, dmOptionsDeferredRemoveNoUdev, verityTarget, parseDmverityOptions } from ${JSON.stringify(index)}
const c = await new KoffiDmBackend('/dev/null').openControl()
const dm = new DmClient(c, { removeAttempts: 1 })
const info = parseDmverityOptions(['X-kata.dmverity.roothash=aabbccdd', 'X-kata.dmverity.hashoffset=8192', 'X-kata.dmverity.salt=0000000000000000'])
const n = 'kata-verity-vdb1-off8192-aabbccdd'
const errs = []
for (const f of [
  () => dm.deviceCreate(n, dmOptionsReadOnlyNoUdev()),
  () => dm.tableLoad(n, [verityTarget(info, '/dev/vdb1')], dmOptionsReadOnlyNoUdev()),
  () => dm.deviceSuspend(n, dmOptionsNoUdev()),
  () => dm.deviceStatus(n),
  () => dm.deviceRemove(n, dmOptionsDeferredRemoveNoUdev()),
]) await f().catch((e) => errs.push(e.errno))
await c.close()
if (errs.join() !== '25,25,25,25,25') throw new Error('unexpected errnos ' + errs.join())
`)
      const out = join(dir, 'trace')
      const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url))
      const traced = run(strace!, ['-v', '-f', '-e', 'trace=ioctl', '-e', 'abbrev=none', '-s', '256', '-o', out, process.execPath, '--import', tsx, script], { timeout: 60_000 })
      try {
        await traced
      } catch (e) {
        // No ptrace in this sandbox (seccomp/capabilities): the check cannot run here, say why.
        if (/ptrace|PTRACE|Operation not permitted/.test(String((e as { stderr?: string }).stderr ?? e))) ctx.skip('strace cannot ptrace here')
        throw e
      }
      const lines = (await readFile(out, 'utf8')).split('\n').filter((l) => l.includes(' DM_')).map((l) => l.replace(/^\d+\s+ioctl\(\d+, /, ''))
      const N = 'name="kata-verity-vdb1-off8192-aabbccdd"'
      expect(lines).toHaveLength(5)
      expect(lines[0]).toContain(`DM_DEV_CREATE, [{version=[4, 0, 0], data_size=16384, ${N}, flags=DM_READONLY_FLAG}]`)
      expect(lines[1]).toContain(`DM_TABLE_LOAD, [{version=[4, 0, 0], data_size=16384, data_start=312, ${N}, target_count=1, flags=DM_READONLY_FLAG}, ` +
        '{sector_start=0, length=16, target_type="verity", string="1 /dev/vdb1 /dev/vdb1 4096 4096 2 3 sha256 aabbccdd 0000000000000000"}]')
      expect(lines[2]).toContain(`DM_DEV_SUSPEND, [{version=[4, 0, 0], data_size=16384, ${N}, event_nr=0, flags=0}]`)
      expect(lines[3]).toContain(`DM_DEV_STATUS, [{version=[4, 0, 0], data_size=16384, ${N}, flags=0}]`)
      expect(lines[4]).toContain(`DM_DEV_REMOVE, [{version=[4, 0, 0], data_size=16384, ${N}, event_nr=0, flags=DM_DEFERRED_REMOVE}]`)
      for (const l of lines) expect(l).toMatch(/= -1 ENOTTY/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
