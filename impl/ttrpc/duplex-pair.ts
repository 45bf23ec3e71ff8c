// An in-memory connected pair of Duplex streams (Node 20 has no stream.duplexPair): what one side
// writes the other reads; ending or destroying one side ends the other, like a socket.
import { Duplex } from 'node:stream'

export function createDuplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = []
  const peerOf = (i: number): Duplex => sides[1 - i]!
  const make = (i: number): Duplex => new Duplex({
    allowHalfOpen: false,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      const peer = peerOf(i)
      if (!peer.destroyed && !peer.readableEnded) peer.push(chunk)
      cb()
    },
    final(cb) {
      const peer = peerOf(i)
      if (!peer.destroyed) peer.push(null)
      cb()
    },
    destroy(err, cb) {
      const peer = peerOf(i)
      if (!peer.destroyed) peer.push(null)
      cb(err)
    },
  })
  sides.push(make(0), make(1))
  return [sides[0]!, sides[1]!]
}
