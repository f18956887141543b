// Semaphore and BoundedSemaphore: a counter that acquirers sleep on while it is 0.
//
// word  name    meaning
// 0     VALUE   the count, never negative
// 1     MAX     the bound for a BoundedSemaphore, -1 for an unbounded Semaphore
//
// acquire: CAS VALUE → VALUE-1 while VALUE > 0, else sleep while VALUE == 0.
// release: VALUE+1 (a bounded one refuses past MAX and leaves VALUE as it was), then wake one
// sleeper. Each release wakes one sleeper and each woken sleeper retries, so n releases can make
// n acquirers progress; a barging acquirer takes a unit first at worst, never loses one.

import { park, type Pending, type Waiter } from '../core/wait.js'
import { ValueError } from '../core/errors.js'

const VALUE = 0
const MAX = 1
const UNBOUNDED = -1
/** The count is an Int32 word: a release past it would wrap to a negative count. */
const VALUE_MAX = 0x7fffffff

export class SemaphoreCore implements Waiter {
  static readonly WORDS = 2
  waitIndex = VALUE
  waitValue = 0
  constructor(readonly i32: Int32Array) {}

  static create(value: number, bounded = false): SemaphoreCore {
    if (value > VALUE_MAX) throw new RangeError(`value must be at most ${VALUE_MAX}, not ${value}`)
    const i32 = new Int32Array(new SharedArrayBuffer(SemaphoreCore.WORDS * 4))
    i32[VALUE] = value
    i32[MAX] = bounded ? value : UNBOUNDED
    return bounded ? new BoundedSemaphoreCore(i32) : new SemaphoreCore(i32)
  }
  static rebuild(state: { sab: SharedArrayBuffer }): SemaphoreCore {
    return new SemaphoreCore(new Int32Array(state.sab))
  }
  reduce(): { sab: SharedArrayBuffer } {
    return { sab: this.i32.buffer as SharedArrayBuffer }
  }

  acquireAttempt(): true | Pending {
    const i32 = this.i32
    for (let v = Atomics.load(i32, VALUE); v > 0; v = Atomics.load(i32, VALUE)) {
      if (Atomics.compareExchange(i32, VALUE, v, v - 1) === v) return true
    }
    return park(this, i32, VALUE, 0)
  }

  release(n = 1): void {
    const i32 = this.i32
    const max = i32[MAX]
    for (;;) {
      const v = Atomics.load(i32, VALUE)
      if (max !== UNBOUNDED && v + n > max) throw new ValueError('semaphore or lock released too many times')
      // Python's sem_post fails the same way (EOVERFLOW); the count stays as it was.
      if (v + n > VALUE_MAX) throw new ValueError(`semaphore value would exceed ${VALUE_MAX} (value ${v}, releasing ${n})`)
      if (Atomics.compareExchange(i32, VALUE, v, v + n) === v) break
    }
    Atomics.notify(i32, VALUE, n)
  }

  getValue(): number {
    return Atomics.load(this.i32, VALUE)
  }

  describe(): string {
    const max = this.i32[MAX]
    return max === UNBOUNDED ? `value=${this.getValue()}` : `value=${this.getValue()}, maxvalue=${max}`
  }
}

/** A Semaphore that refuses to be released past its initial value. */
export class BoundedSemaphoreCore extends SemaphoreCore {
  static override rebuild(state: { sab: SharedArrayBuffer }): BoundedSemaphoreCore {
    return new BoundedSemaphoreCore(new Int32Array(state.sab))
  }
}
