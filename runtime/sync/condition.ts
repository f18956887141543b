// Condition: a FIFO table of waiter slots guarded by the condition's own lock.
//
// Header words (Int32Array over a growable SharedArrayBuffer):
// word  name      meaning
// 0     NEXT      registration counter: gives each waiter its FIFO ticket
// 1     SLEEPERS  slots in WAITING state
// 2     SLOTS     slot capacity (the table grows, doubling, under the lock)
// Slot k (from word HEADER + 3k):
// +0    STATE     FREE=0 | WAITING=1 | NOTIFIED=2; the waiter sleeps on this word
// +1    TICKET    its NEXT at registration
// +2    OWNER     the waiter's owner id (sync/lock.ts): notify skips, and frees, the slot of a
//                 waiter whose thread has ended, so that a killed waiter never takes a notify
//
// Every change to the table happens with the lock held: wait() registers before it releases the
// lock, notify(n) requires the lock, and a waiter frees its slot only after it has re-taken the
// lock. So notify(n) wakes exactly the n oldest waiters, and a waiter that timed out is never
// counted as woken. A notify that reaches a timed-out waiter before it re-took the lock makes its
// wait() return true: the notification is delivered, not lost (threading.Condition drops it).

import { PENDING, park, type Pending, type Waiter } from '../core/wait.js'
import { RuntimeError } from '../core/errors.js'
import { SELF } from '../core/identity.js'
import { ownerEnded } from '../core/liveness.js'
import { RLockCore, rebuildLock, type LockLike } from './lock.js'

const NEXT = 0
const SLEEPERS = 1
const SLOTS = 2
const HEADER = 3
const FREE = 0
const WAITING = 1
const NOTIFIED = 2
const SLOT_WORDS = 3
const INITIAL_SLOTS = 8
const MAX_SLOTS = 1 << 20

/** One call to wait(): its slot, the depth of the lock it gave up, who takes it back, and its phase. */
export class ConditionWait implements Waiter {
  i32: Int32Array
  waitIndex = 0
  waitValue = 0
  relocking = false
  /** Set by the awaitable loop when the wait was aborted. */
  aborted = false
  constructor(readonly table: Int32Array, readonly slot: number, readonly depth: number, readonly owner: number) {
    this.i32 = table
  }
}

export class ConditionCore {
  constructor(readonly lock: LockLike, readonly table: Int32Array) {}

  static create(lock: LockLike): ConditionCore {
    const bytes = (HEADER + SLOT_WORDS * INITIAL_SLOTS) * 4
    const table = new Int32Array(new SharedArrayBuffer(bytes, { maxByteLength: (HEADER + SLOT_WORDS * MAX_SLOTS) * 4 }))
    table[SLOTS] = INITIAL_SLOTS
    return new ConditionCore(lock, table)
  }
  static rebuild(state: { lock: ReturnType<LockLike['reduce']>; table: SharedArrayBuffer }): ConditionCore {
    return new ConditionCore(rebuildLock(state.lock), new Int32Array(state.table))
  }
  reduce(): { lock: ReturnType<LockLike['reduce']>; table: SharedArrayBuffer } {
    return { lock: this.lock.reduce(), table: this.table.buffer as SharedArrayBuffer }
  }

  /**
   * Registers a waiter and gives up the lock (Python: "must acquire() condition before using wait()").
   * `owner`, here and in notify: who acts, as in LockLike.
   */
  waitBegin(owner = SELF): ConditionWait {
    if (!this.lock.isMine(owner)) throw new RuntimeError('cannot wait on un-acquired lock')
    const t = this.table
    let slot = -1
    for (let k = 0; k < t[SLOTS]; k++) {
      if (t[HEADER + SLOT_WORDS * k] === FREE) {
        slot = HEADER + SLOT_WORDS * k
        break
      }
    }
    if (slot < 0) slot = this.grow()
    Atomics.store(t, slot + 1, t[NEXT]++)
    Atomics.store(t, slot + 2, owner)
    Atomics.store(t, slot, WAITING)
    t[SLEEPERS]++
    const depth = this.lock.releaseAll(owner)
    return new ConditionWait(t, slot, depth, owner)
  }

  private grow(): number {
    const t = this.table
    const slots = t[SLOTS]
    if (slots >= MAX_SLOTS) throw new RuntimeError(`a Condition supports at most ${MAX_SLOTS} waiters at once`)
    ;(t.buffer as SharedArrayBuffer).grow((HEADER + SLOT_WORDS * 2 * slots) * 4)
    t[SLOTS] = slots * 2
    return HEADER + SLOT_WORDS * slots
  }

  waitAttempt(w: ConditionWait): boolean | Pending {
    if (!w.relocking) {
      if (Atomics.load(w.table, w.slot) === WAITING) return park(w, w.table, w.slot, WAITING)
      w.relocking = true
    }
    if (this.lock.relockAttempt(w, w.owner) === PENDING) return PENDING
    // The lock is ours again: settle the slot.
    this.lock.restore(w.depth)
    const t = this.table
    const notified = Atomics.load(t, w.slot) === NOTIFIED
    if (!notified) t[SLEEPERS]--
    Atomics.store(t, w.slot, FREE)
    // An aborted waiter that was notified meanwhile hands the notification on (asyncio's rule).
    if (notified && w.aborted) this.notify(1, w.owner)
    return notified
  }

  /** Timeout or abort: stop waiting for a notify, but still take the lock back before returning. */
  waitExpire(w: ConditionWait): Pending {
    w.relocking = true
    return PENDING
  }

  notify(n: number, owner = SELF): void {
    if (!this.lock.isMine(owner)) throw new RuntimeError('cannot notify on un-acquired lock')
    const t = this.table
    for (; n > 0 && t[SLEEPERS] > 0; n--) {
      let oldest = -1
      for (let k = 0, slots = t[SLOTS]; k < slots; k++) {
        const s = HEADER + SLOT_WORDS * k
        if (t[s] === WAITING && !this.reapDead(s) && (oldest < 0 || t[s + 1] - t[oldest + 1] < 0)) oldest = s
      }
      if (oldest < 0) break
      this.wake(oldest)
    }
  }

  /** Frees the slot of a waiter whose thread has ended (it was killed inside wait()); true if it did. */
  private reapDead(slot: number): boolean {
    const t = this.table
    if (!ownerEnded(Atomics.load(t, slot + 2))) return false
    Atomics.store(t, slot, FREE)
    t[SLEEPERS]--
    return true
  }

  notifyAll(owner = SELF): void {
    if (!this.lock.isMine(owner)) throw new RuntimeError('cannot notify on un-acquired lock')
    const t = this.table
    for (let k = 0, slots = t[SLOTS]; k < slots && t[SLEEPERS] > 0; k++) {
      const s = HEADER + SLOT_WORDS * k
      if (t[s] === WAITING && !this.reapDead(s)) this.wake(s)
    }
  }

  private wake(slot: number): void {
    const t = this.table
    Atomics.store(t, slot, NOTIFIED)
    t[SLEEPERS]--
    Atomics.notify(t, slot, 1)
  }

  describe(): string {
    return `${this.lock instanceof RLockCore ? 'AioRLock' : 'AioLock'}(${this.lock.describe()}), waiters=${this.sleepers()}`
  }

  sleepers(): number {
    return Atomics.load(this.table, SLEEPERS)
  }
}
