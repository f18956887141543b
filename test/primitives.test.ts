// Cross-thread semantics of the primitives, in blocking and coro style: the main thread on one
// side, a worker process on the other, stepped through with events instead of sleeps.
import test from 'ava'
import {
  AioArray, AioBarrier, AioBoundedSemaphore, AioCondition, AioEvent, AioLock, AioRLock, AioSemaphore, AioValue,
  BrokenBarrierError, RuntimeError,
} from '../generated/index.generated.js'
import { LONG, STYLES, call, joined, start } from './helpers.js'

for (const style of STYLES) {
  test(`LOCK-07 LOCK-08 a lock held by another thread can be released by this one (${style})`, async (t) => {
    const lock = new AioLock()
    const held = new AioEvent()
    const done = new AioEvent()
    const p = start(t, {
      target: (lock: AioLock, held: AioEvent, done: AioEvent) => {
        lock.acquire()
        held.set()
        done.wait(30_000)
      },
      args: [lock, held, done],
    })
    t.true(held.wait(LONG))
    const t0 = performance.now()
    t.false(await call(style, lock, 'acquire', true, 100))
    t.true(performance.now() - t0 >= 90)
    t.regex(String(lock), /owner=thread \d+/)
    lock.release()
    t.true(await call(style, lock, 'acquire', false))
    lock.release()
    done.set()
    joined(t, p)
  })

  test(`LOCK-07 LOCK-10 a waiter gets the lock when another thread releases it; a dead holder keeps it (${style})`, async (t) => {
    const lock = new AioLock()
    const go = new AioEvent()
    lock.acquire()
    const releaser = start(t, {
      target: (lock: AioLock, go: AioEvent) => {
        go.wait(30_000)
        lock.release() // not the thread that acquired it: allowed for a Lock
      },
      args: [lock, go],
    })
    go.set()
    t.true(await call(style, lock, 'acquire', true, LONG))
    lock.release()
    joined(t, releaser)
    const dies = start(t, { target: (lock: AioLock) => void lock.acquire(), args: [lock] })
    joined(t, dies)
    t.false(await call(style, lock, 'acquire', true, 10))
  })

  test(`RLOCK-03 RLOCK-05 an RLock owned by another thread cannot be released or acquired here (${style})`, async (t) => {
    const rlock = new AioRLock()
    const held = new AioEvent()
    const done = new AioEvent()
    const p = start(t, {
      target: (rlock: AioRLock, held: AioEvent, done: AioEvent) => {
        rlock.acquire()
        rlock.acquire()
        held.set()
        done.wait(30_000)
        rlock.release()
        rlock.release()
      },
      args: [rlock, held, done],
    })
    t.true(held.wait(LONG))
    t.throws(() => rlock.release(), { instanceOf: RuntimeError })
    t.false(await call(style, rlock, 'acquire', true, 100))
    done.set()
    t.true(await call(style, rlock, 'acquire', true, LONG))
    t.true(await call(style, rlock, 'acquire'))
    rlock.release()
    rlock.release()
    joined(t, p)
  })

  test(`SEM a release in another thread wakes a waiting acquire (${style})`, async (t) => {
    const sem = new AioSemaphore(0)
    const bsem = new AioBoundedSemaphore(1)
    t.true(bsem.acquire())
    const p = start(t, {
      target: (sem: AioSemaphore, bsem: AioBoundedSemaphore) => {
        sem.release(2)
        bsem.release()
      },
      args: [sem, bsem],
    })
    t.true(await call(style, sem, 'acquire', true, LONG))
    t.true(await call(style, sem, 'acquire', true, LONG))
    t.true(await call(style, bsem, 'acquire', true, LONG))
    joined(t, p)
    t.is(sem.getValue(), 0)
  })

  test(`EVT-04 EVT-09 set in another thread wakes every waiter (${style})`, async (t) => {
    const go = new AioEvent()
    const woke = new AioSemaphore(0)
    const ready = new AioSemaphore(0)
    const waiters = [0, 1].map(() =>
      start(t, {
        target: (go: AioEvent, woke: AioSemaphore, ready: AioSemaphore) => {
          ready.release()
          if (go.wait(30_000)) woke.release()
        },
        args: [go, woke, ready],
      }),
    )
    t.true(ready.acquire(true, LONG) && ready.acquire(true, LONG))
    const setter = start(t, { target: (go: AioEvent) => go.set(), args: [go] })
    t.true(await call(style, go, 'wait', LONG))
    t.true(await call(style, woke, 'acquire', true, LONG))
    t.true(await call(style, woke, 'acquire', true, LONG))
    for (const p of [...waiters, setter]) joined(t, p)
  })

  test(`EVT-05 an Event wait returns true only after a set: 20,000 ping-pong round trips never wake early (${style})`, async (t) => {
    const a = new AioEvent()
    const b = new AioEvent()
    const rounds = 20_000
    const p = start(t, {
      target: (a: AioEvent, b: AioEvent, rounds: number) => {
        for (let i = 0; i < rounds; i++) {
          if (!a.wait(30_000) || !a.isSet()) process.exit(3) // woke without a set: fail the test
          a.clear()
          b.set()
        }
      },
      args: [a, b, rounds],
    })
    let early = 0
    for (let i = 0; i < rounds; i++) {
      a.set()
      if (!(await call(style, b, 'wait', LONG))) break
      if (!b.isSet()) early++
      b.clear()
    }
    joined(t, p)
    t.is(early, 0)
  })

  test(`COND-05 COND-06 COND-09 notify(n) wakes exactly n waiters of other threads (${style})`, async (t) => {
    const cond = new AioCondition()
    const woken = new AioValue('i', 0)
    const procs = [0, 1, 2, 3].map(() =>
      start(t, {
        target: (cond: AioCondition, woken: AioValue) => {
          cond.acquire()
          if (cond.wait(30_000)) {
            woken.acquire()
            woken.value = (woken.value as number) + 1
            woken.release()
          }
          cond.release()
        },
        args: [cond, woken],
      }),
    )
    // Wait until all four are parked in wait(): the condition counts its waiters.
    const until = (pred: () => boolean) => {
      const end = performance.now() + LONG
      while (!pred() && performance.now() < end) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
      t.true(pred())
    }
    until(() => /waiters=4/.test(String(cond)))
    t.true(await call(style, cond, 'acquire'))
    await call(style, cond, 'notify', 1)
    cond.release()
    until(() => woken.value === 1)
    t.true(await call(style, cond, 'acquire'))
    await call(style, cond, 'notify', 2)
    cond.release()
    until(() => woken.value === 3)
    t.regex(String(cond), /waiters=1/)
    t.true(await call(style, cond, 'acquire'))
    await call(style, cond, 'notifyAll')
    cond.release()
    for (const p of procs) joined(t, p)
    t.is(woken.value, 4)
    t.regex(String(cond), /waiters=0/)
  })

  test(`COND-08 a timed-out waiter is not counted as woken; a later notify goes to a live waiter (${style})`, async (t) => {
    const cond = new AioCondition()
    const result = new AioArray('i', [-1, -1])
    const go = new AioEvent()
    t.true(await call(style, cond, 'acquire'))
    t.false(await call(style, cond, 'wait', 20)) // times out alone
    cond.release()
    const p = start(t, {
      target: (cond: AioCondition, result: AioArray, go: AioEvent) => {
        cond.acquire()
        go.set()
        result.set(0, cond.wait(30_000) ? 1 : 0)
        cond.release()
      },
      args: [cond, result, go],
    })
    t.true(go.wait(LONG))
    t.true(await call(style, cond, 'acquire', true, LONG)) // the worker is parked in wait()
    await call(style, cond, 'notify')
    cond.release()
    joined(t, p)
    t.is(result.get(0), 1)
  })

  test(`COND-12 waitFor re-waits across notifications until the predicate holds (${style})`, async (t) => {
    const cond = new AioCondition()
    const state = new AioValue('i', 0, { lock: false })
    const p = start(t, {
      target: (cond: AioCondition, state: AioValue) => {
        for (let i = 1; i <= 5; i++) {
          cond.acquire()
          state.value = i
          cond.notifyAll()
          cond.release()
        }
      },
      args: [cond, state],
    })
    t.true(await call(style, cond, 'acquire'))
    const got = await call(style, cond, 'waitFor', () => state.value === 5 && 'five', LONG)
    t.is(got, 'five')
    cond.release()
    joined(t, p)
  })

  test(`BAR-02 BAR-04 BAR-05 parties pass together with distinct indices; the action runs once per pass (${style})`, async (t) => {
    const passes = 5
    const counter = new AioValue('i', 0)
    // The action runs in whichever thread arrives last; each thread counts its own runs under a
    // key of this test's own (tests of one file share the main thread).
    const key = `aioBarrierActions_${style}`
    const barrier = new AioBarrier(3, new Function(`globalThis.${key} = (globalThis.${key} ?? 0) + 1`) as () => void)
    const indices = new AioArray('i', 2 * passes)
    const actions = new AioArray('i', 2)
    const workers = [0, 1].map((w) =>
      start(t, {
        target: (barrier: AioBarrier, indices: AioArray, counter: AioValue, actions: AioArray, w: number, passes: number, key: string) => {
          for (let i = 0; i < passes; i++) {
            indices.set(i * 2 + w, barrier.wait(30_000))
            counter.acquire()
            counter.value = (counter.value as number) + 1
            counter.release()
            barrier.wait(30_000)
          }
          actions.set(w, (globalThis as any)[key] ?? 0)
        },
        args: [barrier, indices, counter, actions, w, passes, key],
      }),
    )
    for (let i = 0; i < passes; i++) {
      const mine = await call<number>(style, barrier, 'wait', LONG)
      await call(style, barrier, 'wait', LONG) // the workers stored their indices before this pass
      const all = [mine, indices.get(i * 2), indices.get(i * 2 + 1)].sort()
      t.deepEqual(all, [0, 1, 2])
      t.is(counter.value, 2 * (i + 1)) // both workers counted this pass before the second wait let anyone on
    }
    for (const p of workers) joined(t, p)
    const total = ((globalThis as any)[key] ?? 0) + (actions.get(0) as number) + (actions.get(1) as number)
    t.is(total, 2 * passes) // two barrier passes per loop, one action each
    t.false(barrier.broken)
  })

  test(`BAR-06 BAR-07 reset breaks a waiting party and mends the barrier; abort breaks every waiting party (${style})`, async (t) => {
    const barrier = new AioBarrier(3)
    const outcome = new AioArray('i', [0, 0])
    const ready = new AioSemaphore(0)
    const p = start(t, {
      target: (barrier: AioBarrier, outcome: AioArray, ready: AioSemaphore) => {
        for (let k = 0; k < 2; k++) {
          ready.release()
          try {
            barrier.wait(30_000)
          } catch (e) {
            if ((e as Error).name === 'BrokenBarrierError') outcome.set(k, 1)
          }
        }
      },
      args: [barrier, outcome, ready],
    })
    const parked = (n: number) => {
      const end = performance.now() + LONG
      while (barrier.nWaiting !== n && performance.now() < end) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
      t.is(barrier.nWaiting, n)
    }
    t.true(ready.acquire(true, LONG))
    parked(1)
    barrier.reset()
    t.false(barrier.broken)
    t.true(ready.acquire(true, LONG))
    parked(1)
    // A third thread aborts once two parties (the worker and this thread) wait.
    const aborter = start(t, {
      target: (barrier: AioBarrier) => {
        const end = Date.now() + 30_000
        while (barrier.nWaiting !== 2 && Date.now() < end) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)
        barrier.abort()
      },
      args: [barrier],
    })
    await t.throwsAsync(async () => call(style, barrier, 'wait', LONG), { instanceOf: BrokenBarrierError })
    joined(t, p)
    joined(t, aborter)
    t.deepEqual(outcome.toArray(), [1, 1])
    t.true(barrier.broken)
  })

  test(`BAR-09 a timeout in one party breaks the barrier for the others (${style})`, async (t) => {
    const barrier = new AioBarrier(3)
    const broke = new AioValue('i', 0)
    const p = start(t, {
      target: (barrier: AioBarrier, broke: AioValue) => {
        try {
          barrier.wait(30_000)
        } catch (e) {
          if ((e as Error).name === 'BrokenBarrierError') broke.value = 1
        }
      },
      args: [barrier, broke],
    })
    const end = performance.now() + LONG
    while (barrier.nWaiting !== 1 && performance.now() < end) await new Promise((r) => setTimeout(r, 1))
    await t.throwsAsync(async () => call(style, barrier, 'wait', 50), { instanceOf: BrokenBarrierError })
    joined(t, p)
    t.is(broke.value, 1)
  })

  test(`SC-01 SC-05 values and arrays written by another thread are visible here (${style})`, async (t) => {
    const v = new AioValue('d', 1.5)
    const big = new AioValue('q', 1n)
    const arr = new AioArray('i', [1, 2, 3, 4])
    const chars = new AioArray('c', 10)
    chars.value = Buffer.from('hello')
    const p = start(t, {
      target: (v: AioValue, big: AioValue, arr: AioArray, chars: AioArray) => {
        v.value = (v.value as number) * 2
        big.value = 2n ** 40n
        for (let i = 1; i < arr.length; i++) arr.set(i, (arr.get(i) as number) + (arr.get(i - 1) as number))
        chars.value = Buffer.concat([chars.value, chars.value])
      },
      args: [v, big, arr, chars],
    })
    joined(t, p)
    t.is(v.value, 3)
    t.is(big.value, 2n ** 40n)
    t.deepEqual(arr.toArray(), [1, 3, 6, 10])
    t.is(chars.value.toString(), 'hellohello')
    t.true(await call(style, v, 'acquire', true, LONG))
    await call(style, v, 'release')
  })

  test(`classic stress: K threads × J increments under the lock give exactly K×J (${style})`, async (t) => {
    const K = 3
    const J = 20_000
    const total = new AioValue('i', 0)
    const procs = Array.from({ length: K }, () =>
      start(t, {
        target: (total: AioValue, J: number) => {
          for (let j = 0; j < J; j++) {
            total.acquire()
            total.value = (total.value as number) + 1
            total.release()
          }
        },
        args: [total, J],
      }),
    )
    for (let j = 0; j < J; j++) {
      await call(style, total, 'acquire')
      total.value = (total.value as number) + 1
      total.release()
    }
    for (const p of procs) joined(t, p)
    t.is(total.value, (K + 1) * J)
  })

  test(`a timed-out or aborted acquire never leaves the primitive held (${style})`, async (t) => {
    for (const make of [() => new AioLock(), () => new AioRLock(), () => new AioSemaphore(1), () => new AioBoundedSemaphore(1)]) {
      const prim = make() as AioLock
      const held = new AioEvent()
      const done = new AioEvent()
      const p = start(t, {
        target: (prim: AioLock, held: AioEvent, done: AioEvent) => {
          prim.acquire()
          held.set()
          done.wait(30_000)
          prim.release()
        },
        args: [prim, held, done],
      })
      t.true(held.wait(LONG))
      // Many short timeouts and aborts race the holder's release below.
      const attempts: Promise<unknown>[] = []
      for (let i = 0; i < 20; i++) {
        if (style === 'coro') {
          attempts.push(prim.coro_acquire(true, 5).then((got) => t.false(got)))
          attempts.push(prim.coro_acquire(true, null, { signal: AbortSignal.timeout(5) }).then(() => t.fail('acquired'), () => {}))
        } else {
          t.false(prim.acquire(true, 5))
        }
      }
      await Promise.all(attempts)
      done.set()
      joined(t, p)
      t.true(prim.acquire(false), `${prim} is free once its holder released it`)
      prim.release()
    }
  })
}

test("work due at a time runs in a thread blocked in a wait, whose sleep ends by then (a timer would wait for the event loop the wait holds up): a first pool's put-off terminate ran only in join() and the pool's own waits", async (t) => {
  const { blockOn, dueAt, park } = await import('../runtime/core/wait.js')
  const i32 = new Int32Array(new SharedArrayBuffer(4))
  const w = { i32, waitIndex: 0, waitValue: 0 }
  const start = performance.now()
  dueAt(start + 30, () => Atomics.store(i32, 0, 1))
  // A wait on a word nobody else will change, with a long deadline: only the due work ends it.
  const r = blockOn<string>(w, () => (Atomics.load(i32, 0) === 1 ? 'changed by the due work' : park(w, i32, 0, 0)), start + LONG, () => 'timed out')
  t.is(r, 'changed by the due work')
  t.true(performance.now() - start >= 30, 'not before its time')
})
