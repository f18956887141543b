// Hardening: bad input gets a clear error and changes nothing (issue "no jam, no leak, no silent
// corruption"). Each case failed before its fix: a wrong signal surfaced as "throwIfAborted is not
// a function", and a semaphore released past 2^31-1 wrapped to a negative count.
import test from 'ava'
import { AioEvent, AioLock, AioPipe, AioQueue, AioSemaphore, ValueError, coro_wait } from '../generated/index.generated.js'

const NOT_SIGNALS: [string, unknown, RegExp][] = [
  ['a number', 42, /signal must be an AbortSignal, not number 42/],
  ['a string', 'abort', /signal must be an AbortSignal, not the string "abort"/],
  ['an AbortController', new AbortController(), /signal must be an AbortSignal, not an object \(AbortController\)/],
]

for (const [what, signal, message] of NOT_SIGNALS) {
  test(`a coro_ call given ${what} as its signal rejects with a TypeError that says so, and takes nothing`, async (t) => {
    const lock = new AioLock()
    await t.throwsAsync(lock.coro_acquire(true, null, { signal } as never), { instanceOf: TypeError, message })
    t.false(lock.toString().includes('owner=thread'), 'the lock was not taken')
    t.true(lock.acquire(false))
    const q = new AioQueue<number>()
    q.put(1)
    await t.throwsAsync(q.coro_get(true, null, { signal } as never), { instanceOf: TypeError, message })
    t.is(q.get(false), 1, 'the item is still there')
    await t.throwsAsync(new AioEvent().coro_wait(null, { signal } as never), { instanceOf: TypeError, message })
    await t.throwsAsync(lock.coro_release({ signal } as never), { instanceOf: TypeError, message })
    const [a, b] = AioPipe()
    await t.throwsAsync(coro_wait([a], 0, { signal } as never), { instanceOf: TypeError, message })
    a.close()
    b.close()
  })
}

test('null and undefined signals mean no signal', async (t) => {
  const lock = new AioLock()
  t.true(await lock.coro_acquire(true, null, { signal: undefined }))
  lock.release()
  t.true(await lock.coro_acquire(true, null, { signal: null } as never))
})

test('a semaphore released past 2^31-1 throws ValueError and keeps its count', (t) => {
  const sem = new AioSemaphore(1)
  t.throws(() => sem.release(2 ** 31), { instanceOf: ValueError, message: /would exceed 2147483647/ })
  t.is(sem.getValue(), 1)
  sem.release(2 ** 31 - 2)
  t.is(sem.getValue(), 2 ** 31 - 1)
  t.throws(() => sem.release(), { instanceOf: ValueError, message: /would exceed 2147483647/ })
  t.is(sem.getValue(), 2 ** 31 - 1)
  t.true(sem.acquire(false))
  t.is(sem.getValue(), 2 ** 31 - 2)
})
