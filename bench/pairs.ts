// The proxy pair loops every proxy bench times (a manager's, a Python manager's, the Redis
// context's): queue put+get and lock acquire+release, blocking and awaited, each returning ms.

interface QueueLike {
  put(item: number): void
  get(): unknown
  coro_put(item: number): Promise<void>
  coro_get(): Promise<unknown>
}
interface LockLike {
  acquire(): boolean
  release(): void
  coro_acquire(): Promise<boolean>
  coro_release(): Promise<void>
}

async function timed(f: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

/** [blocking queue pairs, awaited queue pairs, blocking lock pairs, awaited lock pairs], each timing `n` pairs. */
export function proxyPairs(q: QueueLike, lock: LockLike, n: number): Array<() => Promise<number>> {
  return [
    () => timed(() => {
      for (let i = 0; i < n; i++) {
        q.put(i)
        if (q.get() !== i) throw new Error('queue order')
      }
    }),
    () => timed(async () => {
      for (let i = 0; i < n; i++) {
        await q.coro_put(i)
        if ((await q.coro_get()) !== i) throw new Error('queue order')
      }
    }),
    () => timed(() => {
      for (let i = 0; i < n; i++) {
        lock.acquire()
        lock.release()
      }
    }),
    () => timed(async () => {
      for (let i = 0; i < n; i++) {
        await lock.coro_acquire()
        await lock.coro_release()
      }
    }),
  ]
}
