// `npx tsx images/guest/cli.ts [--agent-entry PATH|--no-agent] [--cache-dir DIR]`: builds (or reuses)
// the guest images and prints the GuestImages JSON on stdout; progress goes to stderr.
import { parseArgs } from 'node:util'
import { buildGuestImages } from './build.ts'

const { values } = parseArgs({
  options: {
    'agent-entry': { type: 'string' },
    'no-agent': { type: 'boolean' },
    'cache-dir': { type: 'string' },
  },
})

const images = await buildGuestImages({
  ...(values['cache-dir'] ? { cacheDir: values['cache-dir'] } : {}),
  ...(values['no-agent'] ? { agentEntry: null } : values['agent-entry'] ? { agentEntry: values['agent-entry'] } : {}),
})
process.stdout.write(JSON.stringify(images, null, 2) + '\n')
