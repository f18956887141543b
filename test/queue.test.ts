// Queues across threads: many producers and consumers, items of any size, aborted gets, and
// threads terminated in the middle of a put or a get.
import test from 'ava'
import { createHash } from 'node:crypto'
import { AioArray, AioEvent, AioJoinableQueue, AioLock, AioPipe, AioQueue, AioSimpleQueue, AioValue } from '../generated/index.generated.js'
import { CORE } from '../runtime/core/transfer.js'
import { LONG, STYLES, call, joined, start } from './helpers.js'

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

test('4 producers × 4 consumers × 10,000 items each, threads and the main thread, blocking and coro: nothing lost, nothing twice, FIFO per producer', async (t) => {
  const PRODUCERS = 4
  const N = 10_000
  const q = new AioQueue<{ p: number; i: number; pad: string } | null>(1000)
  const seen = new AioArray('i', PRODUCERS * N)
  const orderErrors = new AioValue('i', 0)
  // Consumers: three worker threads (blocking get) and the main thread (coro_get).
  const consume = (q: AioQueue<any>, seen: AioArray, orderErrors: AioValue, producers: number) => {
    const counts = seen.getObj() as Int32Array
    const last = new Array(producers).fill(-1)
    for (;;) {
      const item = q.get(true, 60_000)
      if (item === null) return
      if (item.i <= last[item.p]) Atomics.add(orderErrors.getObj() as Int32Array, 0, 1)
      last[item.p] = item.i
      Atomics.add(counts, item.p * 10_000 + item.i, 1)
    }
  }
  const consumers = [0, 1, 2].map(() => start(t, { target: consume, args: [q, seen, orderErrors, PRODUCERS] }))
  // Producers: three worker threads (blocking put) and the main thread (coro_put).
  const produce = (q: AioQueue<any>, p: number, n: number) => {
    for (let i = 0; i < n; i++) q.put({ p, i, pad: 'x'.repeat(i % 50) }, true, 60_000)
  }
  const producers = [1, 2, 3].map((p) => start(t, { target: produce, args: [q, p, N] }))
  const mainConsumer = (async () => {
    const counts = seen.getObj() as Int32Array
    const last = -1
    let lastByProducer = new Array(PRODUCERS).fill(last)
    for (;;) {
      const item = await q.coro_get(true, 60_000)
      if (item === null) return
      if (item.i <= lastByProducer[item.p]) Atomics.add(orderErrors.getObj() as Int32Array, 0, 1)
      lastByProducer[item.p] = item.i
      Atomics.add(counts, item.p * N + item.i, 1)
    }
  })()
  for (let i = 0; i < N; i++) await q.coro_put({ p: 0, i, pad: '' }, true, 60_000)
  for (const p of producers) await p.coro_join(LONG)
  for (let c = 0; c < 4; c++) await q.coro_put(null, true, LONG)
  await mainConsumer
  for (const c of consumers) {
    await c.coro_join(LONG)
    t.is(c.exitcode, 0)
  }
  const counts = seen.getObj() as Int32Array
  const wrong = [...counts.keys()].filter((k) => counts[k] !== 1)
  t.deepEqual(wrong.slice(0, 10), [], `${wrong.length} items were not received exactly once`)
  t.is(orderErrors.value, 0)
  t.is(q.qsize(), 0)
})

for (const style of STYLES) {
  test(`a 64 MiB item passes through the default 32 KiB ring between threads, both ways (${style})`, async (t) => {
    const toMain = new AioQueue<Uint8Array>()
    const toWorker = new AioQueue<Uint8Array>()
    const big = new Uint8Array(64 * 1024 * 1024)
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251
    const p = start(t, {
      target: (toWorker: AioQueue<Uint8Array>, toMain: AioQueue<Uint8Array>) => {
        const item = toWorker.get(true, 60_000)
        toMain.put(item) // echo it back
      },
      args: [toWorker, toMain],
    })
    await call(style, toWorker, 'put', big)
    const back = await call<Uint8Array>(style, toMain, 'get', true, 60_000)
    t.is(back.length, big.length)
    t.is(sha(back), sha(big))
    joined(t, p)
  })

  test(`a bounded queue's put waits for a consumer in another thread (${style})`, async (t) => {
    const q = new AioQueue<number>(2)
    await call(style, q, 'put', 1)
    await call(style, q, 'put', 2)
    t.true(q.full())
    const p = start(t, { target: (q: AioQueue<number>) => { q.get(true, 30_000) }, args: [q] })
    await call(style, q, 'put', 3, true, LONG)
    joined(t, p)
    t.is(q.get(false), 2)
    t.is(q.get(false), 3)
  })

  test(`Q-25 a queue passed to a child and on to a grandchild keeps working (${style})`, async (t) => {
    const q = new AioQueue<string>()
    const p = start(t, { target: { module: new URL('./targets.js', import.meta.url), name: 'forwardToGrandchild' }, args: [q] })
    const got = [await call(style, q, 'get', true, LONG), await call(style, q, 'get', true, LONG)]
    joined(t, p)
    t.deepEqual(got.sort(), ['child', 'grandchild'])
  })
}

test('aborting 1,000 pending coro_get calls takes no item: every later item arrives, in order', async (t) => {
  const q = new AioQueue<number>()
  const controllers = Array.from({ length: 1000 }, () => new AbortController())
  const gets = controllers.map((c) => q.coro_get(true, null, { signal: c.signal }).then(() => 'got', (e: Error) => e.name))
  for (const c of controllers) c.abort()
  const outcomes = await Promise.all(gets)
  t.true(outcomes.every((o) => o === 'AbortError'), 'every aborted get rejects with the abort reason')
  const p = start(t, { target: (q: AioQueue<number>) => { for (let i = 0; i < 500; i++) q.put(i) }, args: [q] })
  const got: number[] = []
  for (let i = 0; i < 500; i++) got.push(await q.coro_get(true, LONG))
  joined(t, p)
  t.deepEqual(got, Array.from({ length: 500 }, (_, i) => i))
  t.true(q.empty())
})

test('timed-out gets take nothing either', async (t) => {
  const q = new AioQueue<number>()
  const attempts = Array.from({ length: 200 }, () => q.coro_get(true, 5).then(() => 'got', (e: Error) => e.name))
  t.true((await Promise.all(attempts)).every((o) => o === 'Empty'))
  q.put(1)
  t.is(await q.coro_get(true, LONG), 1)
})

test('a worker terminated while putting loses no item its put() reported done, and the queue stays usable', async (t) => {
  for (const bufferSize of [64, 32 * 1024]) {
    const q = new AioQueue<number>(0, { bufferSize })
    const done = new AioValue('i', -1, { lock: false })
    const p = start(t, {
      target: (q: AioQueue<number>, done: AioValue) => {
        for (let i = 0; i < 200_000; i++) {
          q.put(i)
          done.value = i
        }
      },
      args: [q, done],
    })
    while ((done.value as number) < 2000) await new Promise((r) => setTimeout(r, 1))
    p.terminate()
    await p.coro_join(LONG)
    const last = done.value as number
    const got: number[] = []
    for (;;) {
      try {
        got.push(await q.coro_get(true, 500))
      } catch {
        break
      }
    }
    t.true(got.length >= last + 1, `received ${got.length} items, put() returned for ${last + 1}`)
    t.true(last < 199_999, 'the worker was terminated while it was still putting')
    t.deepEqual(got.slice(0, last + 1), Array.from({ length: last + 1 }, (_, i) => i))
    q.put(-5)
    t.is(q.get(true, LONG), -5)
  }
})

// Serial: the main thread must be free to watch the reader, not blocked by another test.
test.serial('a worker terminated while getting leaves the queue usable, also in the middle of a large item, which the feeder sends again', async (t) => {
  const q = new AioQueue<string | number>(0, { bufferSize: 64 })
  const reading = start(t, { target: (q: AioQueue<string | number>) => { for (;;) q.get() }, args: [q] })
  q.put('y'.repeat(1024 * 1024)) // streams through a 64-byte ring for a while (twice: the feeder sends it again)
  const skip = () => Atomics.load(q[CORE].i32, 12)
  const end = performance.now() + LONG
  while (skip() === 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 1))
  t.true(skip() > 0, 'the worker started reading the large item')
  reading.kill()
  await reading.coro_join(LONG)
  q.put(42)
  // The next reader discards the rest of the dead reader's copy; the feeder, which kept the item
  // until readers were past it, sends it again: both arrive, in either order.
  const got = [await q.coro_get(true, LONG), await q.coro_get(true, LONG)]
  t.deepEqual(got.map((v) => (typeof v === 'string' ? `${v.length} × ${v[0]}` : v)).sort(), ['1048576 × y', 42])
  t.is(q.qsize(), 0)
})

test('JQ-04 four workers get and taskDone; join returns, then sentinels stop them', async (t) => {
  const q = new AioJoinableQueue<number | null>()
  const sum = new AioValue('i', 0)
  const workers = [0, 1, 2, 3].map(() =>
    start(t, {
      target: (q: AioJoinableQueue<number | null>, sum: AioValue) => {
        for (;;) {
          const x = q.get(true, 30_000)
          if (x === null) return q.taskDone()
          using _ = sum.hold()
          sum.value = (sum.value as number) + x
          q.taskDone()
        }
      },
      args: [q, sum],
    }),
  )
  for (let i = 1; i <= 1000; i++) q.put(i)
  await q.coro_join(LONG)
  t.is(sum.value, 500_500)
  for (const _ of workers) q.put(null)
  q.join(LONG)
  for (const w of workers) joined(t, w)
})

test('SimpleQueue between threads, and Q-21: a queue used before a child starts keeps its order', async (t) => {
  const sq = new AioSimpleQueue<number>()
  const q = new AioQueue<number>()
  for (let i = 0; i < 10; i++) q.put(i)
  const p = start(t, {
    target: (sq: AioSimpleQueue<number>, q: AioQueue<number>) => {
      for (let i = 10; i < 20; i++) q.put(i)
      sq.put(sq.empty() ? 1 : 0)
    },
    args: [sq, q],
  })
  t.is(await sq.coro_get(), 1)
  joined(t, p)
  const got = []
  for (let i = 0; i < 20; i++) got.push(q.get(true, LONG))
  t.deepEqual(got, Array.from({ length: 20 }, (_, i) => i))
  t.throws(() => q.get(false), { name: 'Empty' })
})

test('a coro_get never stalls the event loop while it waits', async (t) => {
  const q = new AioQueue<string>()
  const go = new AioEvent()
  const p = start(t, { target: (q: AioQueue<string>, go: AioEvent) => { go.wait(30_000); q.put('late') }, args: [q, go] })
  let ticks = 0
  const timer = setInterval(() => {
    if (++ticks === 20) go.set()
  }, 1)
  t.is(await q.coro_get(true, LONG), 'late')
  clearInterval(timer)
  t.true(ticks >= 20)
  joined(t, p)
})

for (const style of STYLES) {
  test(`a pipe end and a lock sent through a queue arrive working in a worker (${style})`, async (t) => {
    const q = new AioQueue<unknown>()
    const [here, there] = AioPipe()
    const lock = new AioLock()
    const p = start(t, {
      target: (q: AioQueue<any>) => {
        const { conn, lock } = q.get(true, 30_000)
        const got = conn.recv()
        conn.send({ echo: got, locked: lock.acquire(false) })
      },
      args: [q],
    })
    await call(style, q, 'put', { conn: there, lock })
    there.close() // this thread's handle; the one that travelled stays open
    await call(style, here, 'send', 'ping')
    t.deepEqual(await call(style, here, 'recv'), { echo: 'ping', locked: true })
    t.false(lock.acquire(false), 'the worker acquired the very same lock')
    joined(t, p)
  })
}

test('shared objects travel through a queue from a grandchild to the main thread', async (t) => {
  const q = new AioQueue<unknown>()
  const p = start(t, { target: { module: new URL('./targets.js', import.meta.url), name: 'grandchildSendsEvent' }, args: [q] })
  const ev = (await q.coro_get(true, LONG)) as AioEvent
  t.true(await ev.coro_wait(LONG), 'the event set in the grandchild is the one received here')
  joined(t, p)
})
