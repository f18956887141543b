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
}

/** The word to sleep on, filled by an attempt right before it returns PENDING. */
export function park(w: Waiter, i32: Int32Array, index: number, value: number): Pending {
  ;(w as { i32: Int32Array }).i32 = i32
  w.waitIndex = index
  w.waitValue = value
  return PENDING
}

/**
 * The blocking attempt has already run when `parked` is true (its wait fields are set), so the
 * loop starts by sleeping instead of trying again.
 *
 * Loads of the word before sleeping. A wake-up after a short sleep costs 3–6 µs here and one after
 * a long sleep 40–55 µs, so a bounded spin pays off when the other side answers within a few µs.
 * `AIOPROCESSING_SPIN=0` turns spinning off (tests run both ways).
 */
export const SPIN_LOADS = Number(process.env.AIOPROCESSING_SPIN ?? 200)

function spinUntilChanged(i32: Int32Array, index: number, value: number): boolean {
  for (let i = 0; i < SPIN_LOADS; i++) if (Atomics.load(i32, index) !== value) return true
  return false
}

/** Blocking loop: the calling thread really sleeps (Atomics.wait). */
export function blockOn<R>(w: Waiter, attempt: () => R | Pending, deadline: number, expire: () => R | Pending, parked = false): R {
  for (;;) {
    let r: R | Pending = PENDING
    if (!parked) r = attempt()
    parked = false
    if (r !== PENDING) return r
    const remaining = deadline - performance.now()
    if (remaining <= 0) {
      r = expire()
      if (r !== PENDING) return r
      deadline = Infinity // the operation goes on without a deadline (e.g. a Condition re-locking)
      continue
    }
    const { i32, waitIndex, waitValue } = w
    if (!spinUntilChanged(i32, waitIndex, waitValue)) {
      Atomics.wait(i32, waitIndex, waitValue, remaining === Infinity ? undefined : remaining)
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

const NEVER = new Promise<never>(() => {})

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
  expire: () => R | Pending,
  signal: AbortSignal | undefined,
  parked = false,
): Promise<R> {
  if (signal?.aborted) throw abortReason(signal)
  let r: R | Pending = parked ? PENDING : attempt()
  if (r !== PENDING) return r
  let aborted = false
  let onAbort: (() => void) | undefined
  const abortPromise = signal
    ? new Promise<'aborted'>((resolve) => {
        onAbort = () => resolve('aborted')
        signal.addEventListener('abort', onAbort, { once: true })
      })
    : NEVER
  holdLoop()
  let expired = false
  try {
    for (;;) {
      const remaining = expired ? Infinity : aborted ? 0 : deadline - performance.now()
      if (remaining <= 0) {
        expired = true
        try {
          r = expire()
        } catch (error) {
          if (!aborted) throw error // on abort, the abort reason wins over "timed out"
          break
        }
        if (r !== PENDING) break
      } else {
        const { i32, waitIndex, waitValue } = w
        const res = Atomics.waitAsync(i32, waitIndex, waitValue, remaining === Infinity ? undefined : remaining)
        if (res.async) {
          const how = await Promise.race([res.value, expired ? NEVER : abortPromise])
          if (how === 'aborted') {
            aborted = true
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
    if (onAbort) signal!.removeEventListener('abort', onAbort)
  }
  if (aborted) throw abortReason(signal!)
  return r as R
}
