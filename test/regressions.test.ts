// Bugs of Python's aioprocessing (each reproduced there on 3.11) that must not come back, and the
// event-loop guarantees the coro_ methods make.
import test from 'ava'
import { AioCondition, AioEvent, AioLock, AioRLock, AioSemaphore } from '../generated/index.generated.js'
import { ENTRY, LONG, joined, runNode, start } from './helpers.js'

test('awaiting coro_release after coro_acquire does not deadlock (Lock, RLock, Semaphore, Condition)', async (t) => {
  for (const prim of [new AioLock(), new AioRLock(), new AioSemaphore(1), new AioCondition()]) {
    t.true(await prim.coro_acquire())
    await prim.coro_release()
    t.true(prim.acquire(false), `${prim} is free again`)
    prim.release()
  }
})

test('an RLock acquired twice through coroutines can be released twice', async (t) => {
  const rlock = new AioRLock()
  t.true(await rlock.coro_acquire())
  t.true(await rlock.coro_acquire())
  await rlock.coro_release()
  await rlock.coro_release()
  t.regex(String(rlock), /owner=None/)
  await t.throwsAsync(rlock.coro_release(), { name: 'RuntimeError' })
})

test('plain notifyAll() works inside await using of the condition', async (t) => {
  const cond = new AioCondition()
  const waiting = (async () => {
    await using _ = await cond.coro_hold()
    return await cond.coro_wait(LONG)
  })()
  // Let the waiter park, then notify from inside a held block.
  while (!/waiters=1/.test(String(cond))) await new Promise((r) => setTimeout(r, 1))
  {
    await using _ = await cond.coro_hold()
    cond.notifyAll()
  }
  t.true(await waiting)
  t.regex(String(cond), /owner=None/)
})

test('using / await using release on scope exit, also when the block throws', async (t) => {
  const lock = new AioLock()
  t.throws(() => {
    using _ = lock.hold()
    t.false(lock.acquire(false))
    throw new Error('inside')
  }, { message: 'inside' })
  t.true(lock.acquire(false))
  lock.release()
  {
    await using _ = await lock.coro_hold()
    t.false(lock.acquire(false))
  }
  t.true(lock.acquire(false))
  lock.release()
  const sem = new AioSemaphore(1)
  {
    using _ = sem.hold()
    t.is(sem.getValue(), 0)
  }
  t.is(sem.getValue(), 1)
})

test('objects own no threads: 10,000 primitives and 10,000 coro waits start none, and Node exits by itself after', async (t) => {
  const script = `
    import { AioLock, AioEvent } from ${ENTRY}
    const before = process.getActiveResourcesInfo().length
    const locks = Array.from({ length: 10000 }, () => new AioLock())
    for (const l of locks) { await l.coro_acquire(); await l.coro_release() }
    const ev = new AioEvent()
    const waits = Array.from({ length: 10000 }, () => ev.coro_wait(30000))
    setTimeout(() => ev.set(), 5)
    const results = await Promise.all(waits)
    console.log(results.every(Boolean), process.getActiveResourcesInfo().length <= before)
  `
  const r = await runNode(script)
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout.trim(), 'true true')
})

test('a pending coro wait keeps Node alive until it resolves (Atomics.waitAsync alone would not)', async (t) => {
  const script = `
    import { AioEvent, AioProcess } from ${ENTRY}
    const ev = new AioEvent()
    const p = new AioProcess({ target: (ev) => { const end = Date.now() + 200; while (Date.now() < end); ev.set() }, args: [ev], daemon: true })
    p.start()
    console.log('woke', await ev.coro_wait(30000))
  `
  const r = await runNode(script)
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout.trim(), 'woke true')
})

test('a coro wait never stalls the event loop: timers tick while a worker holds the lock', async (t) => {
  const lock = new AioLock()
  const held = new AioEvent()
  const release = new AioEvent()
  const p = start(t, {
    target: (lock: AioLock, held: AioEvent, release: AioEvent) => {
      lock.acquire()
      held.set()
      release.wait(30_000)
      lock.release()
    },
    args: [lock, held, release],
  })
  t.true(await held.coro_wait(LONG))
  let ticks = 0
  const timer = setInterval(() => {
    if (++ticks === 20) release.set()
  }, 1)
  t.true(await lock.coro_acquire(true, LONG))
  clearInterval(timer)
  t.true(ticks >= 20, 'the timer kept running while coro_acquire waited')
  lock.release()
  joined(t, p)
})

test('aborting 1,000 pending coro_acquire calls leaves the lock usable and wakes the real waiter', async (t) => {
  const lock = new AioLock()
  lock.acquire()
  const controllers = Array.from({ length: 1000 }, () => new AbortController())
  const aborted = controllers.map((c) => lock.coro_acquire(true, null, { signal: c.signal }).then(() => 'acquired', () => 'aborted'))
  const real = lock.coro_acquire(true, LONG)
  for (const c of controllers) c.abort()
  t.true((await Promise.all(aborted)).every((r) => r === 'aborted'))
  const ev = new AioEvent()
  const p = start(t, { target: (lock: AioLock, ev: AioEvent) => { lock.release(); ev.set() }, args: [lock, ev] })
  t.true(await real)
  t.true(await ev.coro_wait(LONG))
  joined(t, p)
})

test('the spin before sleeping can be turned off: cross-thread hand-offs work with AIOPROCESSING_SPIN=0', async (t) => {
  const script = `
    import { AioEvent, AioProcess } from ${ENTRY}
    const a = new AioEvent(), b = new AioEvent()
    const p = new AioProcess({ target: (a, b) => { for (let i = 0; i < 200; i++) { if (!a.wait(30000)) process.exit(2); a.clear(); b.set() } }, args: [a, b] })
    p.start()
    let ok = 0
    for (let i = 0; i < 100; i++) { a.set(); if (b.wait(30000)) ok++; b.clear() }
    for (let i = 0; i < 100; i++) { a.set(); if (await b.coro_wait(30000)) ok++; b.clear() }
    p.join(30000)
    console.log(ok, p.exitcode)
  `
  const r = await runNode(script, { ...process.env, AIOPROCESSING_SPIN: '0' })
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout.trim(), '200 0')
})
