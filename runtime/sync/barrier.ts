// Barrier: threading.Barrier's algorithm over shared words, guarded by an internal futex lock.
//
// word  name     meaning
// 0-1   LOCK     an internal LockCore (sync/lock.ts) guarding the words below
// 2     COUNT    parties arrived in the current pass
// 3     PASSES   completed passes; a waiter whose pass completed returns its index
// 4     RESETS   bumped by reset(); a waiter that sees it move raises BrokenBarrierError
// 5     BROKEN   1 after abort(), a timeout, an aborted coro_wait or a failing action
// 6     EPOCH    bumped on every pass, reset, and break; waiters sleep on it
// 7     PARTIES  the number of parties
//
// The last party to arrive runs `action` (exactly once per pass, before anyone is released), then
// bumps PASSES. A waiter reads EPOCH before it looks at the others, so no change is missed.

import { PENDING, blockOn, park, type Pending, type Waiter } from '../core/wait.js'
import { LockCore } from './lock.js'
import { BrokenBarrierError } from '../core/errors.js'
import { compileFunction } from '../core/source.js'
import { helpersFor } from '../core/compiler-helpers.js'
import { functionSource } from '../core/function-source.js'

const COUNT = 2
const PASSES = 3
const RESETS = 4
const BROKEN = 5
const EPOCH = 6
const PARTIES = 7
const WORDS = 8

/** One call to wait(): the pass and reset generation it arrived in, and its index. */
export interface BarrierTicket {
  readonly pass: number
  readonly resets: number
  readonly index: number
}

export class BarrierCore implements Waiter {
  waitIndex = EPOCH
  waitValue = 0
  private readonly mutex: LockCore
  constructor(
    readonly i32: Int32Array,
    readonly action: ((...a: unknown[]) => unknown) | undefined,
    readonly defaultTimeoutMs: number | null,
  ) {
    this.mutex = new LockCore(i32.subarray(0, LockCore.WORDS))
  }

  static create(parties: number, action: BarrierCore['action'], timeoutMs: number | null): BarrierCore {
    // PARTIES is an Int32 word: a larger count would be stored negative.
    if (parties > 0x7fffffff) throw new RangeError(`parties must be at most ${0x7fffffff}, not ${parties}`)
    const i32 = new Int32Array(new SharedArrayBuffer(WORDS * 4))
    i32[PARTIES] = parties
    return new BarrierCore(i32, action, timeoutMs)
  }
  static rebuild(state: { sab: SharedArrayBuffer; action: string | null; timeout: number | null }): BarrierCore {
    // The action crosses threads as source text, like a process target: it must be self-contained.
    const action = state.action === null ? undefined : (compileFunction(state.action, helpersFor(state.action)) as BarrierCore['action'])
    return new BarrierCore(new Int32Array(state.sab), action, state.timeout)
  }
  reduce(): { sab: SharedArrayBuffer; action: string | null; timeout: number | null } {
    return { sab: this.i32.buffer as SharedArrayBuffer, action: this.action ? functionSource('action', this.action, { argsOrModule: false }) : null, timeout: this.defaultTimeoutMs }
  }

  get parties(): number {
    return this.i32[PARTIES]
  }
  get nWaiting(): number {
    return Atomics.load(this.i32, BROKEN) ? 0 : Atomics.load(this.i32, COUNT)
  }
  get broken(): boolean {
    return Atomics.load(this.i32, BROKEN) === 1
  }

  private lock(): void {
    const m = this.mutex
    if (m.tryAcquire() === PENDING) blockOn(m, () => m.acquireAttempt(), Infinity, () => PENDING)
  }
  private unlock(): void {
    this.mutex.release()
  }
  private bump(): void {
    Atomics.add(this.i32, EPOCH, 1)
    Atomics.notify(this.i32, EPOCH)
  }

  /** Arrives; the last party runs the action and completes the pass at once. */
  waitBegin(): BarrierTicket {
    const i32 = this.i32
    this.lock()
    try {
      if (i32[BROKEN]) throw new BrokenBarrierError()
      const index = i32[COUNT]++
      const ticket = { pass: i32[PASSES], resets: i32[RESETS], index }
      if (index + 1 === i32[PARTIES]) {
        try {
          this.action?.()
        } catch (error) {
          this.breakLocked()
          throw error
        }
        i32[COUNT] = 0
        i32[PASSES]++
        this.bump()
      }
      return ticket
    } finally {
      this.unlock()
    }
  }

  waitAttempt(t: BarrierTicket): number | Pending {
    const i32 = this.i32
    const epoch = Atomics.load(i32, EPOCH)
    if (Atomics.load(i32, PASSES) !== t.pass) return t.index
    if (Atomics.load(i32, RESETS) !== t.resets || Atomics.load(i32, BROKEN)) throw new BrokenBarrierError()
    return park(this, i32, EPOCH, epoch)
  }

  /** Timeout or abort: breaks the barrier for every party, unless the pass completed meanwhile. */
  waitExpire(t: BarrierTicket): number {
    this.lock()
    try {
      if (this.i32[PASSES] !== t.pass) return t.index
      if (this.i32[RESETS] === t.resets) this.breakLocked()
    } finally {
      this.unlock()
    }
    throw new BrokenBarrierError()
  }

  private breakLocked(): void {
    this.i32[BROKEN] = 1
    this.i32[COUNT] = 0
    this.bump()
  }

  abort(): void {
    this.lock()
    this.breakLocked()
    this.unlock()
  }

  reset(): void {
    this.lock()
    const i32 = this.i32
    i32[COUNT] = 0
    i32[BROKEN] = 0
    i32[RESETS]++
    this.bump()
    this.unlock()
  }

  describe(): string {
    return this.broken ? `parties=${this.parties}, broken` : `parties=${this.parties}, waiting=${this.nWaiting}`
  }
}
