// A promise's resolve/reject that run a cleanup (clear the deadline, drop the abort listener,
// unregister) before settling: shared by command replies, event waiters and the greeting.
export interface Settle<T> {
  resolve: (v: T) => void
  reject: (e: Error) => void
}

export function settleAfter<T>(resolve: (v: T) => void, reject: (e: Error) => void, cleanup: () => void): Settle<T> {
  return {
    resolve: (v) => {
      cleanup()
      resolve(v)
    },
    reject: (e) => {
      cleanup()
      reject(e)
    },
  }
}
