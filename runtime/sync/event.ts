// Event: a flag that waiters sleep on until it is set.
//
// word  name   meaning
// 0     STATE  bit 0: the flag (1 = set); bits 1..31: a count of set() calls, wrapping
//
// Flag and count share one word so that set() raises the flag and bumps the count in one atomic
// step. A waiter notes the word when it starts and returns true as soon as the flag is up or the
// count has moved: a set() followed at once by clear() still wakes everyone who was waiting
// (threading.Event's rule; multiprocessing's own Event may report False in that race), and no
// set() that happened before a wait began can end it. clear() changes only the flag.

import { park, type Pending, type Waiter } from '../core/wait.js'

const STATE = 0
const FLAG = 1
const COUNT_STEP = 2

export class EventCore implements Waiter {
  static readonly WORDS = 1
  waitIndex = STATE
  waitValue = 0
  constructor(readonly i32: Int32Array) {}

  static create(): EventCore {
    return new EventCore(new Int32Array(new SharedArrayBuffer(EventCore.WORDS * 4)))
  }
  static rebuild(state: { sab: SharedArrayBuffer }): EventCore {
    return new EventCore(new Int32Array(state.sab))
  }
  reduce(): { sab: SharedArrayBuffer } {
    return { sab: this.i32.buffer as SharedArrayBuffer }
  }

  isSet(): boolean {
    return (Atomics.load(this.i32, STATE) & FLAG) !== 0
  }

  set(): void {
    const i32 = this.i32
    for (let v = Atomics.load(i32, STATE); ; ) {
      const seen = Atomics.compareExchange(i32, STATE, v, ((v | FLAG) + COUNT_STEP) | 0)
      if (seen === v) break
      v = seen
    }
    Atomics.notify(i32, STATE)
  }

  clear(): void {
    Atomics.and(this.i32, STATE, ~FLAG)
  }

  /** The word a wait starts from. */
  waitBegin(): number {
    return Atomics.load(this.i32, STATE)
  }

  waitAttempt(start: number): true | Pending {
    const v = Atomics.load(this.i32, STATE)
    if ((v & FLAG) !== 0 || ((v ^ start) & ~FLAG) !== 0) return true
    return park(this, this.i32, STATE, v)
  }

  describe(): string {
    return this.isSet() ? 'set' : 'unset'
  }
}
