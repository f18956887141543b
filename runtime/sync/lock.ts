// Lock and RLock: a futex mutex after Drepper, "Futexes Are Tricky", mutex #3, with an owner word.
//
// word  name    meaning
// 0     STATE   UNLOCKED=0 | LOCKED=1 (no sleepers) | CONTENDED=2 (sleepers may be parked on STATE)
// 1     OWNER   the holder, 0 when free: identity.SELF of a thread, or a negative id that a manager
//               server gives each client (it hosts locks on its one thread for many clients, and
//               runs these same cores with the client as the owner). A Lock may be released by
//               anyone; its owner only feeds toString() and Condition's "is it mine" check.
// 2     COUNT   recursion depth (RLock only)
//
// Fast path: one CAS UNLOCKED→LOCKED. Slow path: exchange to CONTENDED and sleep while it stays
// CONTENDED; whoever unlocks from CONTENDED wakes one sleeper, which retries with CONTENDED so
// that the next unlock wakes the remaining ones. A timed-out sleeper can leave CONTENDED behind
// with nobody asleep: that costs one spare notify, never a lost wake-up.

import { PENDING, park, type Pending, type Waiter } from '../core/wait.js'
import { SELF, ownerName } from '../core/identity.js'
import { RuntimeError, ValueError } from '../core/errors.js'
import { coreOf } from '../core/transfer.js'

const STATE = 0
const OWNER = 1
const COUNT = 2
const UNLOCKED = 0
const LOCKED = 1
const CONTENDED = 2

/**
 * The operations a Condition and a Value need from either kind of lock. `owner` is who acts:
 * this thread unless a manager server acts for a client (see OWNER above).
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
  return owner < 0 ? `a client #${-owner}` : ownerName(owner)
}

function unlock(i32: Int32Array): boolean {
  const old = Atomics.exchange(i32, STATE, UNLOCKED)
  if (old === CONTENDED) Atomics.notify(i32, STATE, 1)
  return old !== UNLOCKED
}

/** The futex word and owner shared by both locks; subclasses add what acquiring means. */
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

  /** Fast path: one CAS UNLOCKED→LOCKED. */
  protected lockFast(owner: number): boolean {
    if (Atomics.compareExchange(this.i32, STATE, UNLOCKED, LOCKED) !== UNLOCKED) return false
    Atomics.store(this.i32, OWNER, owner)
    return true
  }
  /** Slow path: mark CONTENDED; if it was free we hold it, else sleep while it stays CONTENDED. */
  protected lockContended(w: Waiter, owner: number): true | Pending {
    if (Atomics.exchange(this.i32, STATE, CONTENDED) !== UNLOCKED) return park(w, this.i32, STATE, CONTENDED)
    Atomics.store(this.i32, OWNER, owner)
    return true
  }
  protected unlockOwned(): boolean {
    Atomics.store(this.i32, OWNER, 0)
    return unlock(this.i32)
  }
  isLocked(): boolean {
    return Atomics.load(this.i32, STATE) !== UNLOCKED
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
    if (!this.isLocked() || !this.unlockOwned()) throw new ValueError('semaphore or lock released too many times')
  }

  isMine(owner = SELF): boolean {
    return this.isLocked() && Atomics.load(this.i32, OWNER) === owner
  }
  releaseAll(): number {
    this.release()
    return 1
  }
  restore(_depth: number): void {}

  describe(): string {
    return `owner=${this.isLocked() ? holderName(Atomics.load(this.i32, OWNER)) : 'None'}`
  }
}

export class RLockCore extends FutexLock implements LockLike {
  static readonly WORDS = 3
  protected readonly kind = 'rlock'

  // Only the owning thread writes COUNT, and only while it owns the lock.
  tryAcquire(owner = SELF): true | Pending {
    if (Atomics.load(this.i32, OWNER) === owner) {
      this.i32[COUNT]++
      return true
    }
    if (!this.lockFast(owner)) return PENDING
    this.i32[COUNT] = 1
    return true
  }

  acquireAttempt(w: Waiter = this, owner = SELF): true | Pending {
    if (Atomics.load(this.i32, OWNER) === owner) {
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

  release(owner = SELF): void {
    if (Atomics.load(this.i32, OWNER) !== owner) throw new RuntimeError('cannot release un-acquired lock')
    if (--this.i32[COUNT] === 0) this.unlockOwned()
  }

  isMine(owner = SELF): boolean {
    return Atomics.load(this.i32, OWNER) === owner
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
    const owner = Atomics.load(this.i32, OWNER)
    return owner === 0 ? 'owner=None, count=0' : `owner=${holderName(owner)}, count=${Atomics.load(this.i32, COUNT)}`
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
