// The wait core: the one blocking loop and the one awaitable loop that every generated method runs.
//
// An operation that may block is an *attempt* that either returns its result or returns PENDING
// after naming the word to sleep on (`waiter.i32[waiter.waitIndex]` while it still equals
// `waiter.waitValue`). The attempt reads that word *before* it checks the state, so a change
// made between the check and the sleep makes the sleep return at once: no lost wake-ups.
//
// - `blockOn`     loops { attempt; Atomics.wait } until a result or the deadline;
// - `coroBlockOn` loops { attempt; await Atomics.waitAsync } and also honours an AbortSignal.
// At the deadline (or on abort) `expire()` decides: return a result, throw, or return PENDING to
// go on without a deadline (a Condition must still take its lock back before it returns).

/** The last parameter of every coro_ method. */
export interface CoroOptions {
  /** Aborts the wait: the promise rejects with `signal.reason`, and nothing is left acquired or taken. */
  signal?: AbortSignal
}

/** Returned by an attempt that must wait; the waiter's wait fields say where. */
export const PENDING: unique symbol = Symbol('aioprocessing.pending')
export type Pending = typeof PENDING

/** Anything an attempt can park on: a shared Int32Array and the word + value to sleep on. */
export interface Waiter {
  readonly i32: Int32Array
  waitIndex: number
  waitValue: number
  /** The longest single sleep, in ms, before the attempt runs again (for conditions nobody notifies). */
  waitCapMs?: number
  /** Set by coroBlockOn when the call is aborted, for waiters that must undo more than expire() can. */
  aborted?: boolean
}

/**
 * The word to sleep on, filled by an attempt right before it returns PENDING. `capMs` bounds one
 * sleep, for a change that no one will notify (a lock holder that died).
 */
export function park(w: Waiter, i32: Int32Array, index: number, value: number, capMs = Infinity): Pending {
  ;(w as { i32: Int32Array }).i32 = i32
  w.waitIndex = index
  w.waitValue = value
  w.waitCapMs = capMs
  return PENDING
}

/** Returned by expire() when the operation is past the point of no return: finish it, ignore the abort. */
export const COMMITTED: unique symbol = Symbol('aioprocessing.committed')
export type Committed = typeof COMMITTED

/**
 * A wake-up after a short sleep costs 3–6 µs here and one after a long sleep 40–55 µs, and a
 * thread on another core often answers within a few µs: so a thread loads the word for a while
 * before it sleeps. How long adapts, as glibc's adaptive mutex does: a spin that saw the change
 * doubles the next budget (up to SPIN_MAX loads, ~15 µs), one that had to sleep halves it (down to
 * SPIN_MIN). When both threads share a core, spinning only delays the other side, and the budget
 * shrinks. `AIOPROCESSING_SPIN=0` turns spinning off; a number sets the maximum.
 */
const SPIN_MAX = Number(process.env.AIOPROCESSING_SPIN ?? 2000)
const SPIN_MIN = Math.min(50, SPIN_MAX)
let spinBudget = SPIN_MIN

function spinUntilChanged(i32: Int32Array, index: number, value: number): boolean {
  const budget = spinBudget
  for (let i = 0; i < budget; i++) {
    if (Atomics.load(i32, index) !== value) {
      if (budget < SPIN_MAX) spinBudget = Math.min(SPIN_MAX, budget * 2)
      return true
    }
  }
  spinBudget = Math.max(SPIN_MIN, budget >> 1)
  return false
}

let blockHook: (() => void) | undefined

/**
 * `hook` runs once, right before this thread next sleeps in a blocking call. A layer above uses it
 * for work that its event loop would do, and that a blocked thread needs done by another (the
 * first pool's threads must be watched by a supervisor before their owner blocks: process.ts).
 */
export function beforeNextBlock(hook: () => void): void {
  blockHook = hook
}

/** Called by every blocking sleep on another thread's word, before it sleeps. */
export function blocking(): void {
  const hook = blockHook
  if (hook === undefined) return
  blockHook = undefined
  hook()
}

/** Work this thread owes at a time (dueAt), and the earliest of those times. */
let dues: { at: number; run: () => void }[] = []
let nextDue = Infinity

/**
 * Runs `run` once at `at` (performance.now() ms) on this thread, whether it is then in its event
 * loop (a timer) or blocked in a wait of this module (whose sleeps end by then): for work a layer
 * above would leave to a timer, which a blocked thread does not run (a terminate put off while a
 * thread loads: process.ts).
 */
export function dueAt(at: number, run: () => void): void {
  dues.push({ at, run })
  nextDue = Math.min(nextDue, at)
  setTimeout(runDue, Math.max(0, at - performance.now()) + 1).unref()
}

/** Runs what is due; the ms until the next is (Infinity: nothing owed). */
function runDue(): number {
  const now = performance.now()
  if (now >= nextDue) {
    const due = dues.filter((d) => d.at <= now)
    dues = dues.filter((d) => d.at > now)
    nextDue = dues.reduce((m, d) => Math.min(m, d.at), Infinity)
    for (const d of due) d.run()
  }
  return nextDue - now
}

/**
 * Blocking loop: the calling thread really sleeps (Atomics.wait). With `parked`, the caller's own
 * first attempt already failed and parked `w`, so the loop starts by sleeping.
 */
export function blockOn<R>(
  w: Waiter,
  attempt: () => R | Pending,
  deadline: number,
  expire: () => R | Pending | Committed,
  parked = false,
): R {
  for (;;) {
    let r: R | Pending = PENDING
    if (!parked) r = attempt()
    parked = false
    if (r !== PENDING) return r
    const remaining = deadline - performance.now()
    if (remaining <= 0) {
      const e = expire()
      if (e !== PENDING && e !== COMMITTED) return e
      deadline = Infinity // the operation goes on without a deadline (e.g. a Condition re-locking)
      continue
    }
    const { i32, waitIndex, waitValue } = w
    let sleep = Math.min(remaining, w.waitCapMs ?? Infinity)
    if (blockHook !== undefined) blocking()
    if (nextDue !== Infinity) sleep = Math.min(sleep, runDue())
    if (!spinUntilChanged(i32, waitIndex, waitValue)) {
      Atomics.wait(i32, waitIndex, waitValue, sleep === Infinity ? undefined : sleep)
    }
  }
}

// A pending Atomics.waitAsync does not keep Node's event loop alive: one ref'd timer does while any
// coro wait is parked on this thread.
let parkedCoros = 0
let keepAlive: ReturnType<typeof setInterval> | undefined
function holdLoop(): void {
  if (parkedCoros++ === 0) {
    if (keepAlive === undefined) keepAlive = setInterval(() => {}, 0x7fffffff)
    else keepAlive.ref()
  }
}
function releaseLoop(): void {
  if (--parkedCoros === 0) keepAlive!.unref()
}

/**
 * The awaitable loop for an attempt that parks several waiters at once (a wait on many
 * connections): it sleeps until any of their words changes, where a thread can sleep on one word
 * only. `attempt` parks every waiter in `ws`, or returns a result; `timedOut()` is the result past
 * `deadline`. On abort it rejects with `signal.reason`; an attempt that takes nothing needs no undo.
 *
 * One wait per word, armed again only after it fired: the waits left on the words that did not
 * fire are taken off once, as the call ends (a notify of all). Taking them off at every wake-up
 * woke the waits of another call on a shared word, whose own clean-up woke this one back, for
 * ever (a core at 100%). The waits carry no timeout (V8 keeps a timed one's task until its time,
 * notified or not): one timer per sleep does the deadline and the waiters' caps.
 */
export async function coroBlockOnAny<R>(ws: readonly Waiter[], attempt: () => R | Pending, deadline: number, timedOut: () => R, signal?: AbortSignal): Promise<R> {
  if (signal?.aborted) throw abortReason(signal)
  let r = attempt()
  if (r !== PENDING) return r
  const { aborted, stop } = abortWatch(signal)
  holdLoop()
  /** The wait armed for ws[k] (settling as k), and the word and value it is on. */
  const armed: ({ fired: Promise<number>; i32: Int32Array; index: number; value: number } | undefined)[] = ws.map(() => undefined)
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    for (;;) {
      const remaining = deadline - performance.now()
      if (remaining <= 0) return timedOut()
      let sleep = remaining
      for (const w of ws) sleep = Math.min(sleep, w.waitCapMs ?? Infinity)
      let changed = false
      for (let k = 0; k < ws.length; k++) {
        const w = ws[k]
        const a = armed[k]
        // (One on an older value has settled: the writer that changed the word notified it.)
        if (a && a.i32 === w.i32 && a.index === w.waitIndex && a.value === w.waitValue) continue
        const res = Atomics.waitAsync(w.i32, w.waitIndex, w.waitValue)
        if (!res.async) {
          armed[k] = undefined
          changed = true
          continue
        }
        armed[k] = { fired: res.value.then(() => k), i32: w.i32, index: w.waitIndex, value: w.waitValue }
      }
      if (!changed) {
        const racers: Promise<number | 'aborted' | 'timeout'>[] = armed.map((a) => a!.fired)
        if (aborted) racers.push(aborted)
        if (sleep !== Infinity) racers.push(new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), sleep))))
        const how = await Promise.race(racers)
        clearTimeout(timer)
        if (how === 'aborted') throw abortReason(signal!)
        if (typeof how === 'number') armed[how] = undefined
      }
      r = attempt()
      if (r !== PENDING) return r
    }
  } finally {
    clearTimeout(timer)
    releaseLoop()
    stop()
    // A waiter of another call woken by this arms its own wait again, without a notify.
    for (const a of armed) if (a) Atomics.notify(a.i32, a.index)
  }
}

/** A promise that settles as 'aborted' when `signal` aborts (none without a signal), and `stop()` to stop listening. */
function abortWatch(signal: AbortSignal | undefined): { aborted: Promise<'aborted'> | undefined; stop(): void } {
  if (!signal) return { aborted: undefined, stop: () => undefined }
  let onAbort!: () => void
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted')
    signal.addEventListener('abort', onAbort, { once: true })
  })
  return { aborted, stop: () => signal.removeEventListener('abort', onAbort) }
}

/** Rejection reason for an aborted call: the signal's reason, as `fetch` and `timers/promises` do. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/**
 * Awaitable loop: never parks the thread. On abort the call rejects with `signal.reason`, after
 * `expire()` has undone whatever the attempt had begun (so an aborted acquire never holds the lock,
 * an aborted get never takes an item).
 */
export async function coroBlockOn<R>(
  w: Waiter,
  attempt: () => R | Pending,
  deadline: number,
  expire: () => R | Pending | Committed,
  signal: AbortSignal | undefined,
  parked = false,
): Promise<R> {
  if (signal?.aborted) throw abortReason(signal)
  let r: R | Pending = parked ? PENDING : attempt()
  if (r !== PENDING) return r
  let aborted = false
  const { aborted: abortPromise, stop } = abortWatch(signal)
  holdLoop()
  let expired = false
  let busy = 0 // iterations in a row that did not await (the spin saw changes)
  try {
    for (;;) {
      const remaining = expired ? Infinity : aborted ? 0 : deadline - performance.now()
      if (remaining <= 0) {
        expired = true
        let e: R | Pending | Committed
        try {
          e = expire()
        } catch (error) {
          if (!aborted) throw error // on abort, the abort reason wins over "timed out"
          break
        }
        if (e === COMMITTED) aborted = false // too late to cancel: deliver the result
        else if (e !== PENDING) {
          r = e
          break
        }
      } else {
        const { i32, waitIndex, waitValue } = w
        const sleep = Math.min(remaining, w.waitCapMs ?? Infinity)
        const res = spinUntilChanged(i32, waitIndex, waitValue)
          ? undefined
          : Atomics.waitAsync(i32, waitIndex, waitValue, sleep === Infinity ? undefined : sleep)
        // Under steady contention the spin keeps seeing changes and the loop would never yield:
        // let timers, I/O and abort signals of this thread run now and then.
        if (res?.async) busy = 0
        else if (++busy >= 64) {
          busy = 0
          await new Promise((resolve) => setImmediate(resolve))
        }
        if (res?.async) {
          // Race the abort only while it can still matter: a race against a promise that never
          // settles would leave one reaction behind on it per wait.
          const how = expired || !signal ? await res.value : await Promise.race([res.value, abortPromise])
          if (how === 'aborted') {
            aborted = true
            if ('aborted' in w) w.aborted = true
            // Our waitAsync stays queued on the word until notified; flush it (and pass on any
            // wake-up it may have taken) so that a notify(1) never lands on a dead waiter.
            Atomics.notify(i32, waitIndex)
            continue
          }
        }
      }
      r = attempt()
      if (r !== PENDING) break
    }
  } finally {
    releaseLoop()
    stop()
  }
  if (aborted) throw abortReason(signal!)
  return r as R
}

/**
 * Awaitable loop for a wait that ends by an event of this thread rather than a store by another
 * one (a pool result that this thread's own pump delivers): `changed()` gives a promise that
 * settles on the next change, and the loop awaits it instead of a word. Deadline, abort and
 * `expire()` work as in coroBlockOn. The first attempt has already failed.
 */
export async function coroAwaitOn<R>(
  changed: () => Promise<unknown>,
  attempt: () => R | Pending,
  deadline: number,
  expire: () => R | Pending | Committed,
  signal: AbortSignal | undefined,
): Promise<R> {
  if (!signal && deadline === Infinity) {
    // Nothing can interrupt the wait: just await each change.
    for (;;) {
      await changed()
      const r = attempt()
      if (r !== PENDING) return r
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort: (() => void) | undefined
  let wake: ((how: 'timeout' | 'aborted') => void) | undefined
  const interrupted = new Promise<'timeout' | 'aborted'>((resolve) => (wake = resolve))
  if (signal) {
    onAbort = () => wake!('aborted')
    signal.addEventListener('abort', onAbort, { once: true })
  }
  if (deadline !== Infinity) timer = setTimeout(() => wake!('timeout'), Math.max(0, deadline - performance.now()))
  try {
    for (;;) {
      const how = await Promise.race([changed(), interrupted])
      if (how === 'aborted' || how === 'timeout') {
        let e: R | Pending | Committed
        try {
          e = expire()
        } catch (error) {
          if (how === 'aborted') throw abortReason(signal!) // the abort's reason wins over "timed out"
          throw error
        }
        if (how === 'aborted' && e !== COMMITTED) throw abortReason(signal!)
        if (e !== PENDING && e !== COMMITTED) return e
        // Past the point of no return, or nothing to expire: go on without a deadline.
        const r = attempt()
        if (r !== PENDING) return r
        return await coroAwaitOn(changed, attempt, Infinity, expire, undefined)
      }
      const r = attempt()
      if (r !== PENDING) return r
    }
  } finally {
    if (timer) clearTimeout(timer)
    if (onAbort) signal!.removeEventListener('abort', onAbort)
  }
}
