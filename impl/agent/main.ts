// Agent entry point. In the guest: `node agent.mjs --channel vport:kataref.agent.0` (started by init).
// On a host, for tests that need no guest kernel: `kataref agent --listen unix:PATH --root DIR`.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { TtrpcServer } from '../ttrpc/index.ts'
import { InvalidInputError, errorMessage } from '../types/errors.ts'
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../types/logger.ts'
import { registerAgentServices } from './agent-service.ts'
import { guestAgentConfig, type AgentConfig } from './config.ts'
import { Sandbox } from './sandbox.ts'
import { devmapperEnabled } from './storage/storage-context.ts'
import { findVirtioPort, VirtioSerialChannel } from './transport/virtio-serial.ts'

export const USAGE = `usage: kataref agent (--listen unix:PATH | --channel vport:NAME) [--root DIR] [--log-level LEVEL] [--failpoints]
       kataref agent dm-status | dm-create NAME TABLE | dm-remove NAME   (DM diagnostics, see dm-tool.ts)

  --listen unix:PATH   serve ttrpc on a unix socket (host mode; hostname is never changed)
  --channel vport:NAME serve ttrpc on the virtio-serial port named NAME (guest mode)
  --root DIR           sandbox state directory (default /run/kata-containers in a guest,
                       a fresh temp dir in host mode)
  --log-level LEVEL    ${LOG_LEVELS.join('|')} (default info)
  --failpoints         honour debug-only X-kataref.failpoint=<step>:<layer> storage options
                       (fault injection for scenarios; never in production)
  env KATAREF_USE_DEVMAPPER=0  build option: no devicemapper (dm-verity layers fail closed)`

export type Endpoint = { kind: 'unix'; path: string } | { kind: 'vport'; name: string }

export function parseEndpoint(flag: string, value: string): Endpoint {
  const m = /^(unix|vport):(.+)$/.exec(value)
  if (!m) throw new InvalidInputError(flag, `expected unix:PATH or vport:NAME, got ${JSON.stringify(value)}`)
  return m[1] === 'unix' ? { kind: 'unix', path: m[2]! } : { kind: 'vport', name: m[2]! }
}

export interface RunningAgent {
  logger: Logger
  sandbox: Sandbox
  /** Stop serving and destroy the sandbox; resolves when everything is released. */
  stop(): Promise<void>
  /** Resolves when the agent stops by itself or after stop(). */
  done: Promise<void>
}

export async function startAgent(endpoint: Endpoint, config: AgentConfig, logger = createLogger({ level: config.logLevel, component: 'agent' })): Promise<RunningAgent> {
  const sandbox = new Sandbox(config, logger)
  const server = new TtrpcServer({ logger })
  registerAgentServices(server, { sandbox, logger })

  if (endpoint.kind === 'unix') {
    await server.listen(endpoint.path)
    logger.info({ listen: endpoint.path, rootDir: config.rootDir }, 'agent listening')
    let resolveDone!: () => void
    const done = new Promise<void>((r) => (resolveDone = r))
    return {
      logger,
      sandbox,
      done,
      stop: async () => {
        await server.close()
        await sandbox.destroySandbox()
        resolveDone()
      },
    }
  }

  const device = await findVirtioPort(endpoint.name)
  const channel = new VirtioSerialChannel(device, { logger })
  logger.info({ port: endpoint.name, device }, 'agent serving virtio-serial port')
  const done = channel.run((session) => {
    server.serveConnection(session)
  })
  return {
    logger,
    sandbox,
    done,
    stop: async () => {
      channel.stop()
      await server.close()
      await sandbox.destroySandbox()
    },
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0]?.startsWith('dm-')) return (await import('./dm-tool.ts')).dmTool(argv)
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        channel: { type: 'string' },
        root: { type: 'string' },
        'log-level': { type: 'string' },
        failpoints: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }))
  } catch (e) {
    process.stderr.write(`kataref agent: ${errorMessage(e)}\n${USAGE}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  try {
    const level = (values['log-level'] ?? 'info') as LogLevel
    if (!LOG_LEVELS.includes(level)) throw new InvalidInputError('--log-level', `expected one of ${LOG_LEVELS.join(', ')}`)
    if (!!values.listen === !!values.channel) throw new InvalidInputError('arguments', 'give exactly one of --listen or --channel')
    const endpoint = values.listen ? parseEndpoint('--listen', values.listen) : parseEndpoint('--channel', values.channel!)
    const hostMode = endpoint.kind === 'unix'
    // Host mode without --root gets a private temp root, removed again when the agent stops.
    const tempRoot = !values.root && hostMode ? await mkdtemp(join(tmpdir(), 'kataref-agent-')) : undefined
    const rootDir = values.root ?? tempRoot
    const config = guestAgentConfig({
      manageHostname: !hostMode, logLevel: level, ...(rootDir ? { rootDir } : {}),
      devmapper: devmapperEnabled(), failpoints: values.failpoints ?? false,
    })
    const agent = await startAgent(endpoint, config)
    // A virtio-serial read can stay blocked in the threadpool while a host is connected, so `done`
    // may never resolve after a signal: return once stop() has released what the agent holds.
    const stopped = new Promise<void>((resolve) => {
      const onSignal = (sig: NodeJS.Signals) => {
        agent.logger.info({ signal: sig }, 'stopping')
        void agent.stop().finally(resolve)
      }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
    })
    try {
      await Promise.race([agent.done, stopped])
    } finally {
      if (tempRoot) await rm(tempRoot, { recursive: true, force: true })
    }
    return 0
  } catch (e) {
    process.stderr.write(`kataref agent: ${errorMessage(e)}\n`)
    return 1
  }
}

// Run when executed directly (the guest bundle), not when imported by the kataref CLI.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code))
}
