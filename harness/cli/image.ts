// kataref image build|inspect: thin argument handling over images/cli (owned by the images work),
// imported lazily so a missing images module only breaks this command.
import { resolve } from 'node:path'
import type * as ImagesCli from '../../images/cli/index.ts'
import { parseCommandArgs, UsageError } from './args.ts'
import { importOptional } from './delegate.ts'

export const IMAGE_MODULE = 'images/cli/index.ts'

export const IMAGE_USAGE = `usage: kataref image build <dir>... --out DIR [--verity] [--verity-block-size 4096|512]
       kataref image inspect <disk>

  build     each directory becomes an EROFS layer (with --verity: dm-verity protected, with a
            .dmverity sidecar); the layers become the partitions of one GPT VMDK disk in DIR.
            Prints a JSON summary (layers, partitions, dm-verity options for the agent).
  inspect   prints the GPT header and partitions of a disk (VMDK descriptor, raw or head image).`

async function load(): Promise<typeof ImagesCli | null> {
  return importOptional<typeof ImagesCli>('image', IMAGE_MODULE)
}

export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(IMAGE_USAGE + '\n')
    return sub === undefined ? 2 : 0
  }
  if (sub === 'build') {
    const { values, positionals } = parseCommandArgs('image build', IMAGE_USAGE, rest, { out: { type: 'string' }, verity: { type: 'boolean' }, 'verity-block-size': { type: 'string' } }, true)
    if (values.help) {
      process.stdout.write(IMAGE_USAGE + '\n')
      return 0
    }
    if (positionals.length === 0) throw new UsageError('image build', 'give at least one directory', IMAGE_USAGE)
    if (!values.out) throw new UsageError('image build', '--out DIR is required', IMAGE_USAGE)
    const bs = values['verity-block-size']
    if (bs !== undefined && bs !== '4096' && bs !== '512') throw new UsageError('image build', `--verity-block-size must be 4096 or 512, got '${bs}'`, IMAGE_USAGE)
    const images = await load()
    if (!images) return 1
    const summary = await images.imageBuild(
      positionals.map((d) => resolve(d)),
      { out: resolve(values.out), verity: values.verity ?? false, ...(bs ? { verityBlockSize: Number(bs) } : {}) },
    )
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
    return 0
  }
  if (sub === 'inspect') {
    const { values, positionals } = parseCommandArgs('image inspect', IMAGE_USAGE, rest, {}, true)
    if (values.help) {
      process.stdout.write(IMAGE_USAGE + '\n')
      return 0
    }
    if (positionals.length !== 1) throw new UsageError('image inspect', 'give exactly one disk', IMAGE_USAGE)
    const images = await load()
    if (!images) return 1
    process.stdout.write((await images.imageInspect(resolve(positionals[0]!))) + '\n')
    return 0
  }
  throw new UsageError('image', `unknown subcommand '${sub}' (known: build, inspect)`, IMAGE_USAGE)
}
