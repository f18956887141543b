// Lock and RLock: a futex mutex after Drepper, "Futexes Are Tricky", mutex #3, whose locked
// state is the holder's id, as Linux's robust futexes keep the owner's TID in the futex word.
//
// word  name    meaning
// 0     STATE   0 when free; else the holder (an owner id, below) with the sign bit CONTENDED set
//               while sleepers may be parked on STATE
// 1     -       unused: kept so that the layouts that embed a lock (queue, barrier) keep their offsets
// 2     COUNT   recursion depth (RLock only; written only by the holder, while it holds the lock)
//
// Owner ids: identity.SELF of a thread (its id + 1, below CLIENT_BASE), or CLIENT_BASE + n for a
// manager server's client n (the server hosts locks on its one thread for many clients and runs
// these same cores with the client as the owner). A Lock may be released by anyone.
//
// One word is the whole state, so a holder that is stopped at any instruction (terminate() can)
// leaves its own id behind, and a waiter that finds it dead takes the lock over with one CAS
// (takeOver). Two words (state, then owner) leave a window where a lock is held by nobody known.
//
// Fast path: one CAS 0→owner. Slow path: set CONTENDED and sleep while the word stays the same;
// whoever unlocks a CONTENDED word wakes one sleeper, which takes the lock as CONTENDED so that
// the next unlock wakes the remaining ones. A timed-out sleeper can leave CONTENDED behind with
// nobody asleep: that costs one spare notify, never a lost wake-up.

import { PENDING, park, type Pending, type Waiter } from '../core/wait.js'
import { SELF, ownerName } from '../core/identity.js'
import { RuntimeError, ValueError } from '../core/errors.js'
import { coreOf } from '../core/transfer.js'

const STATE = 0
const COUNT = 2
const CONTENDED = 1 << 31
const HOLDER = ~CONTENDED
/** The first owner id of a manager client; thread ids stay below it. */
export const CLIENT_BASE = 1 << 30

/**
 * The operations a Condition and a Value need from either kind of lock. `owner` is who acts:
 * this thread unless a manager server acts for a client (see owner ids above).
 */
export interface LockLike extends Waiter {
  readonly i32: Int32Array
  tryAcquire(owner?: number): true | Pending
  acquireAttempt(w?: Waiter, owner?: number): true | Pending
  release(owner?: number): void
  isMine(owner?: number): boolean
  /** Releases completely (whatever the recursion depth) and returns what `restore` needs. */
  releaseAll(owner?: number): number
  /** Called right after the lock was re-acquired for a Condition: restores the recursion depth. */
  restore(depth: number): void
  /**
   * Takes the lock back for a Condition waiter: always the futex path, never the re-entrant
   * shortcut (another task of this thread may hold an RLock meanwhile).
   */
  relockAttempt(w: Waiter, owner?: number): true | Pending
  reduce(): { kind: 'lock' | 'rlock'; sab: SharedArrayBuffer }
  describe(): string
}

function holderName(owner: number): string {
  return owner >= CLIENT_BASE ? `a client #${owner - CLIENT_BASE + 1}` : ownerName(owner)
}

function unlock(i32: Int32Array): boolean {
  const old = Atomics.exchange(i32, STATE, 0)
  if (old & CONTENDED) Atomics.notify(i32, STATE, 1)
  return old !== 0
}

/** The futex word shared by both locks; subclasses add what acquiring means. */
abstract class FutexLock implements Waiter {
  waitIndex = STATE
  waitValue = CONTENDED
  protected abstract readonly kind: 'lock' | 'rlock'
  constructor(readonly i32: Int32Array) {}

  static create<T>(this: { new (i32: Int32Array): T; readonly WORDS: number }): T {
    return new this(new Int32Array(new SharedArrayBuffer(this.WORDS * 4)))
  }
  static rebuild<T>(this: new (i32: Int32Array) => T, state: { sab: SharedArrayBuffer }): T {
    return new this(new Int32Array(state.sab))
  }
  reduce(): { kind: 'lock' | 'rlock'; sab: SharedArrayBuffer } {
    return { kind: this.kind, sab: this.i32.buffer as SharedArrayBuffer }
  }

  /** Fast path: one CAS 0→owner. */
  protected lockFast(owner: number): boolean {
    return Atomics.compareExchange(this.i32, STATE, 0, owner) === 0
  }
  /**
   * Slow path: take a free lock as CONTENDED (others may be asleep), else mark the holder's word
   * CONTENDED and sleep while it stays that word.
   */
  protected lockContended(w: Waiter, owner: number): true | Pending {
    const i32 = this.i32
    let v = Atomics.load(i32, STATE)
    for (;;) {
      if (v === 0) {
        v = Atomics.compareExchange(i32, STATE, 0, owner | CONTENDED)
        if (v === 0) return true
      } else if (!(v & CONTENDED)) {
        const seen = Atomics.compareExchange(i32, STATE, v, v | CONTENDED)
        if (seen === v) return park(w, i32, STATE, v | CONTENDED)
        v = seen
      } else {
        return park(w, i32, STATE, v)
      }
    }
  }
  /**
   * Takes the lock from a holder that `ended` says is gone; the caller then owns it (as
   * CONTENDED: others may be asleep). False when the holder lives, or the word changed meanwhile.
   */
  takeOver(ended: (holder: number) => boolean, owner = SELF): boolean {
    const v = Atomics.load(this.i32, STATE)
    if (v === 0 || !ended(v & HOLDER)) return false
    return Atomics.compareExchange(this.i32, STATE, v, owner | CONTENDED) === v
  }
  /** The holder's owner id, 0 when free. */
  holder(): number {
    return Atomics.load(this.i32, STATE) & HOLDER
  }
  isLocked(): boolean {
    return Atomics.load(this.i32, STATE) !== 0
  }
}

export class LockCore extends FutexLock implements LockLike {
  static readonly WORDS = 2
  protected readonly kind = 'lock'

  tryAcquire(owner = SELF): true | Pending {
    return this.lockFast(owner) || PENDING
  }
  acquireAttempt(w: Waiter = this, owner = SELF): true | Pending {
    return this.lockContended(w, owner)
  }

  relockAttempt(w: Waiter, owner = SELF): true | Pending {
    return this.lockContended(w, owner)
  }

  release(): void {
    if (!unlock(this.i32)) throw new ValueError('semaphore or lock released too many times')
  }

  isMine(owner = SELF): boolean {
    return this.holder() === owner
  }
  releaseAll(): number {
    this.release()
    return 1
  }
  restore(_depth: number): void {}

  describe(): string {
    const holder = this.holder()
    return `owner=${holder ? holderName(holder) : 'None'}`
  }
}

export class RLockCore extends FutexLock implements LockLike {
  static readonly WORDS = 3
  protected readonly kind = 'rlock'

  // Only the owning thread writes COUNT, and only while it owns the lock.
  tryAcquire(owner = SELF): true | Pending {
    if (this.holder() === owner) {
      this.i32[COUNT]++
      return true
    }
    if (!this.lockFast(owner)) return PENDING
    this.i32[COUNT] = 1
    return true
  }

  acquireAttempt(w: Waiter = this, owner = SELF): true | Pending {
    if (this.holder() === owner) {
      this.i32[COUNT]++
      return true
    }
    if (this.lockContended(w, owner) === PENDING) return PENDING
    this.i32[COUNT] = 1
    return true
  }

  relockAttempt(w: Waiter, owner = SELF): true | Pending {
    return this.lockContended(w, owner)
  }

  override takeOver(ended: (holder: number) => boolean, owner = SELF): boolean {
    if (!super.takeOver(ended, owner)) return false
    this.i32[COUNT] = 1
    return true
  }

  release(owner = SELF): void {
    if (this.holder() !== owner) throw new RuntimeError('cannot release un-acquired lock')
    if (--this.i32[COUNT] === 0) unlock(this.i32)
  }

  isMine(owner = SELF): boolean {
    return this.holder() === owner
  }
  releaseAll(owner = SELF): number {
    if (!this.isMine(owner)) throw new RuntimeError('cannot release un-acquired lock')
    const depth = this.i32[COUNT]
    this.i32[COUNT] = 1
    this.release(owner)
    return depth
  }
  restore(depth: number): void {
    this.i32[COUNT] = depth
  }

  describe(): string {
    const holder = this.holder()
    return holder === 0 ? 'owner=None, count=0' : `owner=${holderName(holder)}, count=${Atomics.load(this.i32, COUNT)}`
  }
}

/** Rebuilds whichever lock a record describes (Conditions and Values carry one). */
export function rebuildLock(state: { kind: 'lock' | 'rlock'; sab: SharedArrayBuffer }): LockCore | RLockCore {
  return state.kind === 'lock' ? LockCore.rebuild<LockCore>(state) : RLockCore.rebuild<RLockCore>(state)
}

/** The lock core of a public AioLock/AioRLock passed as an argument (Condition, Value, Array). */
export function lockCoreOf(name: string, lock: unknown): LockCore | RLockCore {
  return coreOf<LockCore | RLockCore>(name, lock, [LockCore, RLockCore], 'an AioLock or an AioRLock')
}
