// Lock and RLock: a futex mutex after Drepper, "Futexes Are Tricky", mutex #3, with an owner word.
//
// word  name    meaning
// 0     STATE   UNLOCKED=0 | LOCKED=1 (no sleepers) | CONTENDED=2 (sleepers may be parked on STATE)
// 1     OWNER   identity.SELF of the holder, 0 when free (a Lock may be released by anyone; the
//               owner only feeds toString() and Condition's "is it mine" check)
// 2     COUNT   recursion depth (RLock only)
//
// Fast path: one CAS UNLOCKED→LOCKED. Slow path: exchange to CONTENDED and sleep while it stays
// CONTENDED; whoever unlocks from CONTENDED wakes one sleeper, which retries with CONTENDED so
// that the next unlock wakes the remaining ones. A timed-out sleeper can leave CONTENDED behind
// with nobody asleep: that costs one spare notify, never a lost wake-up.

import { PENDING, park, type Pending, type Waiter } from './wait.js'
import { SELF, ownerName } from './identity.js'
import { RuntimeError, ValueError } from './errors.js'
import { coreOf } from './transfer.js'

const STATE = 0
const OWNER = 1
const COUNT = 2
const UNLOCKED = 0
const LOCKED = 1
const CONTENDED = 2

/** The operations a Condition and a Value need from either kind of lock. */
export interface LockLike extends Waiter {
  readonly i32: Int32Array
  tryAcquire(): true | Pending
  acquireAttempt(w?: Waiter): true | Pending
  release(): void
  isMine(): boolean
  /** Releases completely (whatever the recursion depth) and returns what `restore` needs. */
  releaseAll(): number
  /** Called right after the lock was re-acquired for a Condition: restores the recursion depth. */
  restore(depth: number): void
  reduce(): { kind: 'lock' | 'rlock'; sab: SharedArrayBuffer }
  describe(): string
}

function unlock(i32: Int32Array): boolean {
  const old = Atomics.exchange(i32, STATE, UNLOCKED)
  if (old === CONTENDED) Atomics.notify(i32, STATE, 1)
  return old !== UNLOCKED
}

export class LockCore implements LockLike {
  static readonly WORDS = 2
  waitIndex = STATE
  waitValue = CONTENDED
  constructor(readonly i32: Int32Array) {}

  static create(): LockCore {
    return new LockCore(new Int32Array(new SharedArrayBuffer(LockCore.WORDS * 4)))
  }
  static rebuild(state: { sab: SharedArrayBuffer }): LockCore {
    return new LockCore(new Int32Array(state.sab))
  }
  reduce(): { kind: 'lock'; sab: SharedArrayBuffer } {
    return { kind: 'lock', sab: this.i32.buffer as SharedArrayBuffer }
  }

  tryAcquire(): true | Pending {
    if (Atomics.compareExchange(this.i32, STATE, UNLOCKED, LOCKED) !== UNLOCKED) return PENDING
    Atomics.store(this.i32, OWNER, SELF)
    return true
  }

  acquireAttempt(w: Waiter = this): true | Pending {
    if (Atomics.exchange(this.i32, STATE, CONTENDED) !== UNLOCKED) return park(w, this.i32, STATE, CONTENDED)
    Atomics.store(this.i32, OWNER, SELF)
    return true
  }

  release(): void {
    const i32 = this.i32
    if (Atomics.load(i32, STATE) === UNLOCKED) throw new ValueError('semaphore or lock released too many times')
    Atomics.store(i32, OWNER, 0)
    if (!unlock(i32)) throw new ValueError('semaphore or lock released too many times')
  }

  isMine(): boolean {
    return Atomics.load(this.i32, STATE) !== UNLOCKED && Atomics.load(this.i32, OWNER) === SELF
  }
  isLocked(): boolean {
    return Atomics.load(this.i32, STATE) !== UNLOCKED
  }
  releaseAll(): number {
    this.release()
    return 1
  }
  restore(_depth: number): void {}

  describe(): string {
    return `owner=${this.isLocked() ? ownerName(Atomics.load(this.i32, OWNER)) || 'unknown' : 'None'}`
  }
}

export class RLockCore implements LockLike {
  static readonly WORDS = 3
  waitIndex = STATE
  waitValue = CONTENDED
  constructor(readonly i32: Int32Array) {}

  static create(): RLockCore {
    return new RLockCore(new Int32Array(new SharedArrayBuffer(RLockCore.WORDS * 4)))
  }
  static rebuild(state: { sab: SharedArrayBuffer }): RLockCore {
    return new RLockCore(new Int32Array(state.sab))
  }
  reduce(): { kind: 'rlock'; sab: SharedArrayBuffer } {
    return { kind: 'rlock', sab: this.i32.buffer as SharedArrayBuffer }
  }

  tryAcquire(): true | Pending {
    const i32 = this.i32
    if (Atomics.load(i32, OWNER) === SELF) {
      // Only this thread writes COUNT while it owns the lock.
      i32[COUNT]++
      return true
    }
    if (Atomics.compareExchange(i32, STATE, UNLOCKED, LOCKED) !== UNLOCKED) return PENDING
    Atomics.store(i32, OWNER, SELF)
    i32[COUNT] = 1
    return true
  }

  acquireAttempt(w: Waiter = this): true | Pending {
    const i32 = this.i32
    if (Atomics.load(i32, OWNER) === SELF) {
      i32[COUNT]++
      return true
    }
    if (Atomics.exchange(i32, STATE, CONTENDED) !== UNLOCKED) return park(w, i32, STATE, CONTENDED)
    Atomics.store(i32, OWNER, SELF)
    i32[COUNT] = 1
    return true
  }

  release(): void {
    const i32 = this.i32
    if (Atomics.load(i32, OWNER) !== SELF) throw new RuntimeError('cannot release un-acquired lock')
    if (--i32[COUNT] > 0) return
    Atomics.store(i32, OWNER, 0)
    unlock(i32)
  }

  isMine(): boolean {
    return Atomics.load(this.i32, OWNER) === SELF
  }
  releaseAll(): number {
    if (!this.isMine()) throw new RuntimeError('cannot release un-acquired lock')
    const depth = this.i32[COUNT]
    this.i32[COUNT] = 1
    this.release()
    return depth
  }
  restore(depth: number): void {
    this.i32[COUNT] = depth
  }

  describe(): string {
    const owner = Atomics.load(this.i32, OWNER)
    return owner === 0 ? 'owner=None, count=0' : `owner=${ownerName(owner)}, count=${Atomics.load(this.i32, COUNT)}`
  }
}

/** Rebuilds whichever lock a record describes (Conditions and Values carry one). */
export function rebuildLock(state: { kind: 'lock' | 'rlock'; sab: SharedArrayBuffer }): LockCore | RLockCore {
  return state.kind === 'lock' ? LockCore.rebuild(state) : RLockCore.rebuild(state)
}

/** The lock core of a public AioLock/AioRLock passed as an argument (Condition, Value, Array). */
export function lockCoreOf(name: string, lock: unknown): LockCore | RLockCore {
  return coreOf<LockCore | RLockCore>(name, lock, [LockCore, RLockCore], 'an AioLock or an AioRLock')
}
