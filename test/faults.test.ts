// Fault suite: parties killed at random moments, in tight loops, while the others go on. Bounded:
// every wait has a generous limit, so a jam fails the test instead of hanging the run.
import test from 'ava'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AioJoinableQueue, AioProcess, AioQueue, Full, getContext } from '../generated/index.generated.js'
import { LONG } from './helpers.js'

const MAX_ITEMS = 1 << 20 // per producer slot
const BASE = 100_000_000 // item = slot × BASE + index

/** Resolves once `ready()` holds, checking every turn of the event loop; rejects after LONG ms. */
async function until(ready: () => boolean, what: string): Promise<void> {
  const end = performance.now() + LONG
  while (!ready()) {
    if (performance.now() > end) throw new Error(`timed out waiting until ${what} ${(globalThis as any).__diag?.() ?? ''}`)
    await new Promise((r) => setImmediate(r))
  }
}

// Only producers are killed here: a consumer killed between get() returning and recording the item
// would lose it from the count, which no queue can prevent.
test.serial('thread context: 4 producers killed 300 times mid-put while 4 consumers get: every put() that returned is got exactly once or remains', async (t) => {
  const SLOTS = 4
  const KILLS = 300
  // A small ring: puts contend for the write lock and overflow to the feeder, the paths a kill can cut.
  const q = new AioQueue<number>(0, { bufferSize: 4096 })
  // progress[s]: items of slot s below it were put and their put() returned.
  const progress = new Int32Array(new SharedArrayBuffer(4 * SLOTS))
  const seen = new Int32Array(new SharedArrayBuffer(4 * SLOTS * MAX_ITEMS))
  const maybe = new Set<number>() // put() may have returned for these, unrecorded, before the kill

  const consumers = Array.from({ length: 4 }, () => new AioProcess({
    target: (q: AioQueue<number>, seen: Int32Array, BASE: number, MAX: number) => {
      for (;;) {
        const v = q.get()
        if (v < 0) return
        Atomics.add(seen, Math.floor(v / BASE) * MAX + (v % BASE), 1)
      }
    },
    args: [q, seen, BASE, MAX_ITEMS],
  }))
  for (const c of consumers) c.start()
  t.teardown(() => {
    for (const c of consumers) if (c.isAlive()) c.kill()
  })

  // On a timeout, the queue's words and the producers' states go in the error (a jam is then diagnosable).
  const producers = new Map<number, AioProcess>()
  ;(globalThis as any).__diag = () => JSON.stringify({ words: Array.from((q as any)[Symbol.for('aioprocessing.core')].i32.slice(0, 51)), producers: [...producers].map(([slot, p]) => [slot, p.pid, p.isAlive(), p.exitcode]) })
  t.teardown(() => void delete (globalThis as any).__diag)
  const producer = (slot: number, from: number): AioProcess => {
    const p = new AioProcess({
      target: (q: AioQueue<number>, progress: Int32Array, slot: number, from: number, BASE: number) => {
        for (let i = from; ; i++) {
          q.put(slot * BASE + i)
          Atomics.store(progress, slot, i + 1)
        }
      },
      args: [q, progress, slot, from, BASE],
    })
    p.start()
    producers.set(slot, p)
    return p
  }

  let kills = 0
  await Promise.all(Array.from({ length: SLOTS }, async (_, slot) => {
    let from = 0
    while (kills < KILLS) {
      const p = producer(slot, from)
      // Let it put a random few more items, then kill it wherever it is: usually inside put().
      const target = from + 1 + Math.floor(Math.random() * 40)
      await until(() => Atomics.load(progress, slot) >= target, `producer ${slot} reached item ${target}`)
      if (kills++ % 2) p.kill()
      else p.terminate()
      await p.coro_join(LONG)
      if (p.isAlive()) throw new Error(`producer ${slot} did not end within ${LONG} ms of its kill`)
      const confirmed = Atomics.load(progress, slot)
      maybe.add(slot * BASE + confirmed) // its put() may have returned just before the kill
      from = confirmed + 1
      Atomics.store(progress, slot, from)
      if (from + 64 >= MAX_ITEMS) break
    }
  }))

  // Sentinels stop the consumers; items a dead producer left to the feeder may arrive after them.
  for (const _ of consumers) await q.coro_put(-1)
  for (const c of consumers) {
    await c.coro_join(LONG)
    t.false(c.isAlive(), 'a consumer is stuck in get(): the queue jammed')
  }
  for (;;) {
    let v: number
    try {
      v = await q.coro_get(true, 1000)
    } catch {
      break
    }
    if (v >= 0) Atomics.add(seen, Math.floor(v / BASE) * MAX_ITEMS + (v % BASE), 1)
  }

  let confirmed = 0
  const problems: string[] = []
  for (let slot = 0; slot < SLOTS; slot++) {
    const end = Atomics.load(progress, slot)
    for (let i = 0; i < end; i++) {
      const n = seen[slot * MAX_ITEMS + i]
      const item = slot * BASE + i
      if (maybe.has(item)) {
        if (n > 1) problems.push(`item ${item} (put cut by a kill) got ${n} times`)
      } else if (n !== 1) problems.push(`item ${item} got ${n} times`)
      else confirmed++
    }
  }
  t.true(kills >= KILLS, `${kills} kills`)
  t.deepEqual(problems.slice(0, 20), [], `${problems.length} items lost or doubled`)
  t.true(confirmed > KILLS, `${confirmed} items checked`)
  // The queue still works both ways.
  q.put(7)
  t.is(await q.coro_get(true, LONG), 7)
})

test.serial('thread context: 4 producers and 4 consumers of a JoinableQueue killed 300 times: nothing lost but what a killed consumer had taken, nothing doubled, qsize() and join() exact', async (t) => {
  const SLOTS = 4
  const KILLS = 300
  const q = new AioJoinableQueue<number>(0, { bufferSize: 4096 })
  const progress = new Int32Array(new SharedArrayBuffer(4 * SLOTS)) // as in the test above
  const seen = new Int32Array(new SharedArrayBuffer(4 * SLOTS * MAX_ITEMS))
  // hand[c]: item + 1 that consumer c got and has not recorded yet (0: none).
  const hand = new Int32Array(new SharedArrayBuffer(4 * SLOTS))
  const maybe = new Set<number>() // put() may have returned, unrecorded, before a producer's kill
  const held = new Set<number>() // in a consumer's hands when it was killed
  let kills = 0
  let consumerKills = 0
  let stopping = false

  const producer = (slot: number, from: number): AioProcess => {
    const p = new AioProcess({
      target: (q: AioJoinableQueue<number>, progress: Int32Array, slot: number, from: number, BASE: number, MAX: number) => {
        for (let i = from; i < MAX - 64; i++) {
          q.put(slot * BASE + i)
          Atomics.store(progress, slot, i + 1)
        }
      },
      args: [q, progress, slot, from, BASE, MAX_ITEMS],
    })
    p.start()
    return p
  }
  const consumer = (c: number): AioProcess => {
    const p = new AioProcess({
      // taskDone() before recording: an item got and recorded is always done.
      target: (q: AioJoinableQueue<number>, seen: Int32Array, hand: Int32Array, c: number, BASE: number, MAX: number) => {
        for (;;) {
          const v = q.get()
          Atomics.store(hand, c, v + 1)
          if (v < 0) return
          if (!Number.isInteger(v) || v % BASE >= MAX || v >= 4 * BASE) throw new Error(`got ${String(v)}: not an item put`)
          q.taskDone()
          Atomics.add(seen, Math.floor(v / BASE) * MAX + (v % BASE), 1)
          Atomics.store(hand, c, 0)
        }
      },
      args: [q, seen, hand, c, BASE, MAX_ITEMS],
    })
    p.start()
    return p
  }
  const live = new Set<AioProcess>()
  t.teardown(() => {
    for (const p of live) if (p.isAlive()) p.kill()
  })
  const kill = async (p: AioProcess, what: string): Promise<void> => {
    if (kills++ % 2) p.kill()
    else p.terminate()
    await p.coro_join(LONG)
    if (p.isAlive()) throw new Error(`${what} did not end within ${LONG} ms of its kill`)
    live.delete(p)
  }

  const producers = Array.from({ length: SLOTS }, async (_, slot) => {
    let from = 0
    while (kills < KILLS && from + 64 < MAX_ITEMS) {
      const p = producer(slot, from)
      live.add(p)
      const target = Math.min(from + 1 + Math.floor(Math.random() * 40), MAX_ITEMS - 64)
      await until(() => Atomics.load(progress, slot) >= target, `producer ${slot} reached item ${target}`)
      await kill(p, `producer ${slot}`)
      const confirmed = Atomics.load(progress, slot)
      maybe.add(slot * BASE + confirmed)
      from = confirmed + 1
      Atomics.store(progress, slot, from)
    }
  })
  const consumers = Array.from({ length: SLOTS }, async (_, c) => {
    while (!stopping) {
      const p = consumer(c)
      live.add(p)
      if (kills >= KILLS) return p // the last one of this slot stays and drains
      // Kill it after it has got a random few more items, or after a while if producers are slow.
      const total = () => seen.reduce((a, b) => a + b, 0)
      const target = total() + 1 + Math.floor(Math.random() * 40)
      const end = performance.now() + 200
      await until(() => total() >= target || performance.now() > end || kills >= KILLS, `consumer ${c} got items`)
      if (kills >= KILLS) return p
      await kill(p, `consumer ${c}`)
      consumerKills++
      const h = Atomics.load(hand, c)
      if (h > 0) held.add(h - 1)
      Atomics.store(hand, c, 0)
    }
    return undefined
  })
  await Promise.all(producers)
  const last = await Promise.all(consumers)
  stopping = true
  for (const _ of last) await q.coro_put(-1)
  for (const p of last) {
    if (!p) continue
    await p.coro_join(LONG)
    t.false(p.isAlive(), 'a consumer is stuck in get(): the queue jammed')
    live.delete(p)
  }

  // What is left: qsize() must count it exactly (a dead producer's items the feeder accepted
  // count before it has written them: wait for those rather than stop at a momentarily empty ring).
  const reported = q.qsize()
  let drained = 0
  for (;;) {
    let v: number
    try {
      v = drained < reported ? await q.coro_get(true, LONG) : q.getNowait()
    } catch {
      break
    }
    drained++
    q.taskDone()
    if (v >= 0) Atomics.add(seen, Math.floor(v / BASE) * MAX_ITEMS + (v % BASE), 1)
  }
  t.is(reported, drained, 'qsize() counted items that are not there, or missed some')

  const problems: string[] = []
  let confirmed = 0
  let lostInHand = 0
  let inWindow = 0
  // Items whose put a killed producer may or may not have made, never got: some may have been put
  // and then taken by a consumer killed inside get() (taken, never done), which nothing records.
  let maybeUnseen = 0
  for (let slot = 0; slot < SLOTS; slot++) {
    const end = Atomics.load(progress, slot)
    for (let i = 0; i < end; i++) {
      const item = slot * BASE + i
      const n = seen[slot * MAX_ITEMS + i]
      if (n > 1) problems.push(`item ${item} got ${n} times`)
      else if (n === 1) confirmed++
      else if (held.has(item)) lostInHand++
      else if (!maybe.has(item)) inWindow++
      else maybeUnseen++
    }
  }
  // A consumer killed after get() took its item — in the few instructions between get()'s commit
  // (one store) and its return, or after it returned and before the test recorded it — had the
  // item: it is gone with that consumer, as with any queue. That is at most one per killed consumer.
  if (lostInHand + inWindow > consumerKills) problems.push(`${lostInHand + inWindow} items lost, more than the ${consumerKills} consumers killed`)
  t.true(kills >= KILLS && consumerKills > 20, `${kills} kills, ${consumerKills} of consumers`)
  t.deepEqual(problems.slice(0, 20), [], `${problems.length} items lost or doubled`)
  t.true(confirmed > KILLS, `${confirmed} items checked`)

  // join(): every item is done but those a consumer was killed holding (got, not yet done).
  let open = 0
  for (; open <= held.size + 1; open++) {
    try {
      q.taskDone()
    } catch (error) {
      t.regex((error as Error).message, /too many times/)
      break
    }
  }
  // Each killed consumer leaves at most one item unfinished: those known to be in hand or lost in
  // the get() window, and, up to the kills left, maybe-put items it may have taken inside get().
  const unknownKills = Math.max(0, consumerKills - held.size - inWindow)
  const allowed = held.size + inWindow + Math.min(maybeUnseen, unknownKills)
  t.true(open <= allowed, `${open} items unfinished, but consumers were killed holding only ${allowed} (${held.size} in hand, ${inWindow} in get()'s window, ${Math.min(maybeUnseen, unknownKills)} maybe-put items)`)
  await q.coro_join(LONG) // returns at once: join() sleeps on nothing that is not there
})

test.serial('thread context: producers of a bounded queue killed 100 times mid-put: no slot is lost, qsize() and full() exact', async (t) => {
  const MAXSIZE = 8
  const q = new AioQueue<number>(MAXSIZE, { bufferSize: 256 })
  const progress = new Int32Array(new SharedArrayBuffer(8))
  const consumer = new AioProcess({
    target: (q: AioQueue<number>) => {
      while (q.get() >= 0);
    },
    args: [q],
  })
  consumer.start()
  t.teardown(() => {
    if (consumer.isAlive()) consumer.kill()
  })
  for (let kill = 0; kill < 100; kill++) {
    const p = new AioProcess({
      target: (q: AioQueue<number>, progress: Int32Array, from: number) => {
        for (let i = from; ; i++) {
          q.put(i)
          Atomics.store(progress, 0, i + 1)
        }
      },
      args: [q, progress, Atomics.load(progress, 0)],
    })
    p.start()
    const target = Atomics.load(progress, 0) + 1 + Math.floor(Math.random() * 20)
    await until(() => Atomics.load(progress, 0) >= target, `the producer reached item ${target}`)
    if (kill % 2) p.kill()
    else p.terminate()
    await p.coro_join(LONG)
    t.false(p.isAlive())
  }
  await q.coro_put(-1, true, LONG)
  await consumer.coro_join(LONG)
  t.false(consumer.isAlive(), 'the consumer is stuck in get()')
  // The consumer took everything before the sentinel; what a dead producer's feeder still writes may follow.
  for (;;) {
    try {
      await q.coro_get(true, 500)
    } catch {
      break
    }
  }
  t.is(q.qsize(), 0, 'qsize() counts items that are not there')
  t.false(q.full())
  for (let k = 0; k < MAXSIZE; k++) q.putNowait(k) // every slot is free again
  t.true(q.full())
  t.throws(() => q.putNowait(99), { instanceOf: Full })
  t.is(q.qsize(), MAXSIZE)
})

test.serial('thread context: consumers killed 40 times while streaming out items larger than the ring: the feeder sends a lost item again', async (t) => {
  const N = 400
  const SIZE = 64 * 1024 // 16 times the ring: every item streams through it
  const q = new AioQueue<Uint8Array>(0, { bufferSize: 4096 })
  ;(globalThis as any).__diag = () => JSON.stringify({ words: Array.from((q as any)[Symbol.for('aioprocessing.core')].i32.slice(0, 24)), live: [...live].map((p) => [p.pid, p.isAlive(), p.exitcode]) })
  const seen = new Int32Array(new SharedArrayBuffer(4 * N))
  const hand = new Int32Array(new SharedArrayBuffer(4 * 2)) // item + 1 a consumer got and has not recorded
  for (let i = 0; i < N; i++) {
    const item = new Uint8Array(SIZE).fill(i & 0xff)
    new DataView(item.buffer).setInt32(0, i)
    q.put(item) // to the feeder: never waits for room
  }
  const consumer = (c: number): AioProcess => {
    const p = new AioProcess({
      target: (q: AioQueue<Uint8Array>, seen: Int32Array, hand: Int32Array, c: number, SIZE: number) => {
        for (;;) {
          const item = q.get()
          const v = item.length === SIZE ? new DataView(item.buffer, item.byteOffset).getInt32(0) : -1
          Atomics.store(hand, c, v + 1)
          if (v < 0) return
          if (item[SIZE - 1] !== (v & 0xff)) throw new Error(`item ${v} arrived corrupt`)
          Atomics.add(seen, v, 1)
          Atomics.store(hand, c, 0)
        }
      },
      args: [q, seen, hand, c, SIZE],
    })
    p.start()
    return p
  }
  const live = new Set<AioProcess>()
  t.teardown(() => {
    for (const p of live) if (p.isAlive()) p.kill()
  })
  const total = (): number => seen.reduce((a, b) => a + b, 0)
  const held = new Set<number>()
  let kills = 0
  await Promise.all([0, 1].map(async (c) => {
    while (kills < 40 && total() < N - 40) {
      const p = consumer(c)
      live.add(p)
      const target = total() + 1 + Math.floor(Math.random() * 4)
      await until(() => total() >= target, `consumer ${c} got items`)
      await new Promise((r) => setTimeout(r, Math.random() * 2)) // mostly lands inside get(), streaming
      if (kills++ % 2) p.kill()
      else p.terminate()
      await p.coro_join(LONG)
      t.false(p.isAlive())
      live.delete(p)
      const h = Atomics.load(hand, c)
      if (h > 0) held.add(h - 1)
      Atomics.store(hand, c, 0)
    }
  }))
  const last = consumer(0)
  live.add(last)
  q.put(new Uint8Array(1)) // the sentinel
  await last.coro_join(LONG)
  t.false(last.isAlive(), 'the last consumer is stuck in get()')
  live.delete(last)
  // An item sent again after the sentinel went in is behind it.
  for (;;) {
    let item: Uint8Array
    try {
      item = await q.coro_get(true, 1000)
    } catch {
      break
    }
    Atomics.add(seen, new DataView(item.buffer, item.byteOffset).getInt32(0), 1)
  }
  const problems: string[] = []
  let inWindow = 0
  for (let i = 0; i < N; i++) {
    if (seen[i] > 1) problems.push(`item ${i} got ${seen[i]} times`)
    else if (seen[i] === 0 && !held.has(i)) inWindow++
  }
  // Only an item a killed consumer had already taken may be missing: the kills land mostly inside
  // get(), streaming, where nothing may be lost (without the feeder sending lost items again,
  // 40 kills lost about 20), and rarely in the moments after get() took its item.
  if (held.size + inWindow > Math.ceil(kills / 8)) problems.push(`${held.size + inWindow} items missing after ${kills} kills`)
  t.deepEqual(problems, [])
  t.is(q.qsize(), 0)
  t.log(`${N} items of ${SIZE} bytes, ${kills} consumers killed, ${held.size + inWindow} missing with them`)
})

test.serial('spawn context: producer processes SIGKILLed 60 times mid-put: every put() that returned is got exactly once or remains', async (t) => {
  const ctx = getContext('spawn')
  const SLOTS = 2
  const KILLS = 60
  const q = ctx.AioQueue<number>()
  // progress[s]: items of slot s below it were put and their put() returned (a proxy of the broker's array).
  const progress = ctx.AioArray('i', SLOTS)
  const maybe = new Set<number>()
  const seen = new Map<number, number>()
  let consuming = true
  const consumer = (async () => {
    while (consuming || q.qsize() > 0) {
      try {
        const v = await q.coro_get(true, 100)
        seen.set(v, (seen.get(v) ?? 0) + 1)
      } catch {
        // Empty: look again
      }
    }
  })()

  let kills = 0
  const ends: number[] = []
  await Promise.all(Array.from({ length: SLOTS }, async (_, slot) => {
    let from = 0
    while (kills < KILLS) {
      const p = ctx.AioProcess({
        target: (q: any, progress: any, slot: number, from: number, BASE: number) => {
          for (let i = from; ; i++) {
            q.put(slot * BASE + i)
            progress.set(slot, i + 1)
          }
        },
        args: [q, progress, slot, from, BASE],
      })
      p.start()
      const target = from + 1 + Math.floor(Math.random() * 20)
      await until(() => (progress.get(slot) as number) >= target, `spawned producer ${slot} reached item ${target}`)
      kills++
      p.kill() // SIGKILL
      await p.coro_join(LONG)
      if (p.isAlive()) throw new Error(`producer ${slot} outlived SIGKILL`)
      const confirmed = progress.get(slot) as number
      maybe.add(slot * BASE + confirmed)
      from = confirmed + 1
      progress.set(slot, from)
    }
    ends[slot] = from
  }))
  consuming = false
  await consumer
  const problems: string[] = []
  let checked = 0
  for (let slot = 0; slot < SLOTS; slot++) {
    for (let i = 0; i < ends[slot]; i++) {
      const item = slot * BASE + i
      const n = seen.get(item) ?? 0
      if (maybe.has(item) ? n > 1 : n !== 1) problems.push(`item ${item} got ${n} times`)
      else if (!maybe.has(item)) checked++
    }
  }
  t.true(kills >= KILLS, `${kills} kills`)
  t.deepEqual(problems.slice(0, 20), [], `${problems.length} items lost or doubled`)
  t.true(checked > KILLS, `${checked} items checked`)
})

test.serial('spawn context: consumer processes SIGKILLed 60 times inside get(): no item lost that the consumer did not have, none doubled', async (t) => {
  const ctx = getContext('spawn')
  const N = 4000
  const KILLS = 60
  const dir = mkdtempSync(join(tmpdir(), 'aio-faults-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const q = ctx.AioQueue<number>()
  // Items keep arriving while consumers wait in get(), so kills land while the server delivers.
  let producing = true
  const producer = (async () => {
    for (let i = 0; i < N; i++) {
      await q.coro_put(i)
      if (i % 8 === 7) await new Promise((r) => setTimeout(r, 1))
    }
    producing = false
  })()
  // A consumer writes each item it got to its own file at once (one write(2)): what it had.
  const consumer = (file: string): AioProcess => {
    const p = ctx.AioProcess({
      target: async (q: any, file: string) => {
        const fs = await import('node:fs')
        const fd = fs.openSync(file, 'a')
        for (;;) {
          const v = q.get()
          fs.writeSync(fd, `${v}\n`)
          if (v < 0) return
        }
      },
      args: [q, file],
    })
    p.start()
    return p
  }
  const lines = (file: string): number => {
    try {
      return readFileSync(file, 'utf8').split('\n').length - 1
    } catch {
      return 0
    }
  }
  let kills = 0
  const live = new Set<AioProcess>()
  t.teardown(() => {
    for (const p of live) if (p.isAlive()) p.kill()
  })
  for (let c = 0; kills < KILLS; c++) {
    const file = join(dir, `c${c}`)
    const p = consumer(file)
    live.add(p)
    const target = 1 + Math.floor(Math.random() * 30)
    await until(() => lines(file) >= target || !producing, `consumer ${c} got ${target} items`)
    // A random moment later: the kill lands anywhere in the consumer's loop, mostly inside get().
    await new Promise((r) => setTimeout(r, Math.random() * 3))
    p.kill() // SIGKILL
    await p.coro_join(LONG)
    t.false(p.isAlive())
    live.delete(p)
    kills++
  }
  await producer
  const last = consumer(join(dir, 'last'))
  live.add(last)
  await q.coro_put(-1)
  await last.coro_join(LONG)
  t.false(last.isAlive(), 'the last consumer is stuck in get()')
  live.delete(last)

  const seen = new Map<number, number>()
  // An item put back after the sentinel went in (its taker's death noticed late) is behind it.
  for (;;) {
    try {
      const v = await q.coro_get(true, 1000)
      seen.set(v, (seen.get(v) ?? 0) + 1)
    } catch {
      break
    }
  }
  for (const f of readdirSync(dir)) {
    for (const v of readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map(Number)) seen.set(v, (seen.get(v) ?? 0) + 1)
  }
  const doubled = [...seen].filter(([, n]) => n > 1).map(([v]) => v)
  const lost: number[] = []
  for (let i = 0; i < N; i++) if (!seen.has(i)) lost.push(i)
  t.deepEqual(doubled, [], 'items got twice')
  // Only a consumer killed after its get() acknowledged the answer — while it wakes up to return,
  // or before its write(2) — can take an item with it: at most one per kill, and far fewer on a
  // quiet machine (the test below shows the put-back itself, deterministically).
  t.true(lost.length <= kills, `${lost.length} items lost in ${kills} kills: ${lost.slice(0, 10).join(', ')}`)
  t.is(q.qsize(), 0)
  t.log(`${N} items, ${kills} consumers killed, ${lost.length} lost with a consumer`)
})

test.serial('spawn context: an answered get() whose consumer is frozen and then SIGKILLed before it read the answer is put back', async (t) => {
  const ctx = getContext('spawn')
  const q = ctx.AioQueue<string>()
  const dir = mkdtempSync(join(tmpdir(), 'aio-faults-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'waiting')
  const consumer = ctx.AioProcess({
    target: async (q: any, file: string) => {
      const fs = await import('node:fs')
      fs.writeFileSync(file, 'waiting')
      return q.get() // waits: the queue is empty
    },
    args: [q, file],
  })
  consumer.start()
  t.teardown(() => {
    if (consumer.isAlive()) consumer.kill()
  })
  await until(() => existsSync(file), 'the consumer is about to get()')
  await new Promise((r) => setTimeout(r, 300)) // its request reaches the server, which waits for an item
  process.kill(consumer.pid as number, 'SIGSTOP') // frozen: the answer will sit unread in its socket
  await q.coro_put('the item')
  await new Promise((r) => setTimeout(r, 200)) // the server answers into the frozen process's socket
  consumer.kill() // SIGKILL: it never read the answer, nor acknowledged it
  await consumer.coro_join(LONG)
  t.false(consumer.isAlive())
  // The server notices the dead connection and puts the item back.
  t.is(await q.coro_get(true, LONG), 'the item')
})

