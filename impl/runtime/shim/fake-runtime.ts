// A scripted SandboxRuntime for tests (named as a fake): processes live in memory, the test decides
// what they print and when they exit. Every call is recorded in order.
import { Code, KatarefError } from '../../types/errors.ts'
import type { OciProcessJson } from './oci.ts'
import type { CreateContainerParams, SandboxRuntime } from './sandbox-runtime.ts'

interface FakeProc {
  started: boolean
  out: Buffer[]
  err: Buffer[]
  stdin: Buffer[]
  stdinClosed: boolean
  exitStatus: number | undefined
  waiters: (() => void)[]
  process?: OciProcessJson
}

export class FakeSandboxRuntime implements SandboxRuntime {
  readonly calls: string[] = []
  readonly created: CreateContainerParams[] = []
  readonly procs = new Map<string, FakeProc>()
  readonly pid = 4242
  shutdowns = 0
  /** What a started process does; default: nothing until the test calls exit(). */
  onStart: (cid: string, eid: string, fake: FakeSandboxRuntime) => void = () => {}
  /** Signal handling; default: any signal ends the process with 128 + signal. */
  onSignal: (cid: string, eid: string, signal: number, fake: FakeSandboxRuntime) => void = (c, e, s, f) => f.exit(c, e, 128 + s)

  private key(cid: string, eid: string): string {
    return `${cid}/${eid || cid}`
  }
  private get(cid: string, eid: string): FakeProc {
    const p = this.procs.get(this.key(cid, eid))
    if (!p) throw new KatarefError(`process ${this.key(cid, eid)} not found`, Code.NOT_FOUND)
    return p
  }
  private add(cid: string, eid: string): FakeProc {
    const p: FakeProc = { started: false, out: [], err: [], stdin: [], stdinClosed: false, exitStatus: undefined, waiters: [] }
    this.procs.set(this.key(cid, eid), p)
    return p
  }
  private wake(p: FakeProc): void {
    for (const w of p.waiters.splice(0)) w()
  }
  private changed(p: FakeProc): Promise<void> {
    return new Promise((r) => p.waiters.push(r))
  }

  /** Test control: the process prints. */
  print(cid: string, eid: string, text: string, stream: 'out' | 'err' = 'out'): void {
    const p = this.get(cid, eid)
    p[stream].push(Buffer.from(text))
    this.wake(p)
  }
  /** Test control: the process exits (its output streams reach EOF once drained). */
  exit(cid: string, eid: string, status: number): void {
    const p = this.get(cid, eid)
    p.exitStatus = status
    this.wake(p)
  }
  stdinOf(cid: string, eid: string): { data: string; closed: boolean } {
    const p = this.get(cid, eid)
    return { data: Buffer.concat(p.stdin).toString(), closed: p.stdinClosed }
  }

  async createContainer(p: CreateContainerParams): Promise<{ pid: number }> {
    this.calls.push(`createContainer ${p.containerId}`)
    this.created.push(p)
    this.add(p.containerId, '')
    return { pid: this.pid }
  }
  async startContainer(cid: string): Promise<void> {
    this.calls.push(`startContainer ${cid}`)
    this.get(cid, '').started = true
    this.onStart(cid, cid, this)
  }
  async execProcess(cid: string, eid: string, process: OciProcessJson): Promise<void> {
    this.calls.push(`execProcess ${cid} ${eid}`)
    const p = this.add(cid, eid)
    p.process = process
    p.started = true
    this.onStart(cid, eid, this)
  }
  async signalProcess(cid: string, eid: string, signal: number, all: boolean): Promise<void> {
    this.calls.push(`signalProcess ${cid} ${eid} ${signal}${all ? ' all' : ''}`)
    this.get(cid, eid)
    this.onSignal(cid, eid, signal, this)
  }
  async waitProcess(cid: string, eid: string): Promise<number> {
    this.calls.push(`waitProcess ${cid} ${eid}`)
    const p = this.get(cid, eid)
    while (p.exitStatus === undefined) await this.changed(p)
    return p.exitStatus
  }
  private async read(cid: string, eid: string, len: number, stream: 'out' | 'err'): Promise<Uint8Array> {
    const p = this.get(cid, eid)
    for (;;) {
      const chunk = p[stream].shift()
      if (chunk) {
        if (chunk.length > len) p[stream].unshift(chunk.subarray(len))
        return chunk.subarray(0, len)
      }
      if (p.exitStatus !== undefined) return new Uint8Array()
      await this.changed(p)
    }
  }
  readStdout(cid: string, eid: string, len: number): Promise<Uint8Array> {
    return this.read(cid, eid, len, 'out')
  }
  readStderr(cid: string, eid: string, len: number): Promise<Uint8Array> {
    return this.read(cid, eid, len, 'err')
  }
  async writeStdin(cid: string, eid: string, data: Uint8Array): Promise<number> {
    this.get(cid, eid).stdin.push(Buffer.from(data))
    return data.length
  }
  async closeStdin(cid: string, eid: string): Promise<void> {
    this.calls.push(`closeStdin ${cid} ${eid}`)
    this.get(cid, eid).stdinClosed = true
  }
  async removeContainer(cid: string): Promise<void> {
    this.calls.push(`removeContainer ${cid}`)
    for (const k of [...this.procs.keys()]) if (k.startsWith(`${cid}/`)) this.procs.delete(k)
  }
  async shutdown(): Promise<void> {
    this.calls.push('shutdown')
    this.shutdowns++
  }
}
