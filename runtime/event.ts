// Event: a flag that waiters sleep on until it is set.
//
// word  name  meaning
// 0     FLAG  0 = clear, 1 = set
// 1     SEQ   bumped by every set(); waiters sleep on it
//
// A waiter notes SEQ when it starts, then returns true as soon as FLAG is set or SEQ has moved:
// a set() followed at once by clear() still wakes everyone who was waiting (threading.Event's
// rule; multiprocessing's own Event may report False in that race). set() writes FLAG before it
// bumps SEQ, and a waiter reads SEQ before FLAG, so no set() is missed.

import { park, type Pending, type Waiter } from './wait.js'

const FLAG = 0
const SEQ = 1

export class EventCore implements Waiter {
  static readonly WORDS = 2
  waitIndex = SEQ
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
    return Atomics.load(this.i32, FLAG) === 1
  }

  set(): void {
    const i32 = this.i32
    Atomics.store(i32, FLAG, 1)
    Atomics.add(i32, SEQ, 1)
    Atomics.notify(i32, SEQ)
  }

  clear(): void {
    Atomics.store(this.i32, FLAG, 0)
  }

  /** The SEQ a wait starts from. */
  waitBegin(): number {
    return Atomics.load(this.i32, SEQ)
  }

  waitAttempt(startSeq: number): true | Pending {
    const i32 = this.i32
    const seq = Atomics.load(i32, SEQ)
    if (Atomics.load(i32, FLAG) === 1 || seq !== startSeq) return true
    return park(this, i32, SEQ, seq)
  }

  describe(): string {
    return this.isSet() ? 'set' : 'unset'
  }
}
