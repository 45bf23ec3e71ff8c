// An in-memory, cross-wired pair of Duplex streams (Node 20 has no stream.duplexPair).
import { Duplex } from 'node:stream'

export function memoryDuplexPair(): [Duplex, Duplex] {
  // eslint-disable-next-line prefer-const
  let b: Duplex
  const make = (other: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        other().push(chunk)
        cb()
      },
      final(cb) {
        other().push(null)
        cb()
      },
      destroy(err, cb) {
        const o = other()
        if (!o.destroyed) o.push(null)
        cb(err)
      },
    })
  const a = make(() => b)
  b = make(() => a)
  return [a, b]
}
