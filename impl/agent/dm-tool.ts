// `kataref agent dm-*`: small device-mapper diagnostics run in the guest by scenarios through the
// witness shell (the guest has no dmsetup). They use the agent's own DM client (DM ioctls on
// /dev/mapper/control) and never make /dev/mapper nodes, so a scenario can show what the kernel does
// by itself.
//   dm-status                    JSON: every DM device with its table and status (DM_TABLE_STATUS)
//   dm-create NAME TABLE-LINE    DM_DEV_CREATE + DM_TABLE_LOAD + resume, nothing else; prints major:minor
//   dm-remove NAME               DM_DEV_REMOVE
import { DmClient, KoffiDmBackend, dmOptionsNoUdev, dmOptionsReadOnlyNoUdev, readDmTable, formatErrorChain, type DmTarget } from '../dmverity/index.ts'

export async function dmTool(argv: string[]): Promise<number> {
  const dm = new KoffiDmBackend()
  const [cmd, name, ...rest] = argv
  try {
    if (cmd === 'dm-status') {
      const control = await dm.openControl()
      let names: string[]
      try {
        names = (await new DmClient(control).listDevices()).map((d) => d.name)
      } finally {
        await control.close()
      }
      const out = []
      for (const n of names) out.push({ name: n, table: await readDmTable({ dm }, n, { table: true }), status: await readDmTable({ dm }, n, { table: false }) })
      process.stdout.write(JSON.stringify(out) + '\n')
      return 0
    }
    if (!name) throw new Error(`${cmd}: NAME required`)
    const control = await dm.openControl()
    try {
      const c = new DmClient(control)
      if (cmd === 'dm-create') {
        const m = /^(\d+) (\d+) (\S+) (.*)$/.exec(rest.join(' '))
        if (!m) throw new Error('dm-create: table line "START LENGTH TYPE PARAMS" required')
        const target: DmTarget = { sectorStart: BigInt(m[1]!), length: BigInt(m[2]!), targetType: m[3]!, params: m[4]! }
        await c.deviceCreate(name, dmOptionsReadOnlyNoUdev())
        await c.tableLoad(name, [target], dmOptionsReadOnlyNoUdev())
        await c.deviceSuspend(name, dmOptionsNoUdev())
        const { major, minor } = await c.deviceStatus(name)
        process.stdout.write(`${major}:${minor}\n`)
        return 0
      }
      if (cmd === 'dm-remove') {
        await c.deviceRemove(name, dmOptionsNoUdev())
        return 0
      }
      throw new Error(`unknown command ${cmd}`)
    } finally {
      await control.close()
    }
  } catch (e) {
    process.stderr.write(`kataref agent ${cmd}: ${formatErrorChain(e)}\n`)
    return 1
  }
}
