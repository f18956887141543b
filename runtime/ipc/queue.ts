// Queue, JoinableQueue and SimpleQueue: items as records in a byte ring in shared memory (ring.ts,
// where its words are laid out), counted, and handed to the feeder when they cannot go in at once.
//
// Writes never wait for room in the producer's own thread, as Python's feeder thread guarantees:
// a record that fits is written and committed at once (one TAIL store makes it visible whole);
// one that does not — the ring is full, another producer holds WLOCK, or the item is larger than
// the ring — goes to the feeder, which lives in the supervisor of the thread's parent and streams
// it in as room frees. A producer keeps its order by sending everything to the feeder while any of
// its records are still there. So a put() that returned is never lost when its thread is
// terminated, and no item size can wedge the ring: a reader streams a large record out as the
// feeder streams it in.

import { COMMITTED, PENDING, coroBlockOn, park, type Committed, type Pending, type Waiter } from '../core/wait.js'
import { Empty, Full, ValueError } from '../core/errors.js'
import { deadlineOf, type Timeout } from '../core/args.js'
import { threadId } from 'node:worker_threads'
import { FLUSH_QUEUES, atProcessEnd } from '../core/process-end.js'
import { decode, encode, encoded } from './serialize.js'
import { ANSWER_ACCEPTED, ANSWER_REFUSED, cancelFeed, feed, feederPort } from './feeder-client.js'
import { ACCEPTS, DEAD_OWNER_CHECK_MS, DONE, EOF, GETS, GetState, HEAD, LEN, MAXSIZE, PUTS, REQUEUED, Ring, SPACE_SEQ, TAIL, WSTATE } from './ring.js'

/** How long a put() waits for a consumer to make room before it hands the record to the feeder. */
const ROOM_WAIT_MS = 1
/** Records of one handle the feeder may hold before put() waits (about Python's pipe + feeder buffer). */
export const MAX_BACKLOG = 65_536

export interface QueueOptions {
  /** Bytes of the shared ring, a power of two (default 32 KiB). Items of any size pass through. */
  bufferSize?: number
}

/** One call to put(): the encoded item, copied out of the scratch buffer only if the put must wait. */
export class PutState implements Waiter {
  i32: Int32Array
  waitIndex = GETS
  waitValue = 0
  waitCapMs = Infinity
  bytes: Buffer | undefined
  onLoop = false
  /** When a bounded queue's feeder gives up waiting for a slot (performance.now() of this thread). */
  deadline = Infinity
  /** Set by the awaitable loop when the call's signal aborts it. */
  aborted = false
  /** Once handed to the feeder: its answer (feeder.ts: ANSWER_*), and the token a cancel names. */
  answer: Int32Array | undefined
  token = ''
  cancelled = false
  constructor(i32: Int32Array, readonly n: number) {
    this.i32 = i32
  }
}

export class QueueCore implements Waiter {
  waitIndex = 0
  waitValue = 0
  waitCapMs = Infinity
  readonly i32: Int32Array
  closed = false
  /** Records this handle gave to the feeder and the feeder has not written yet (word 0). */
  pending: Int32Array | undefined
  constructor(readonly ring: Ring) {
    this.i32 = ring.i32
  }

  static create<T extends QueueCore>(this: new (ring: Ring) => T, maxsize = 0, options: QueueOptions = {}): T {
    // MAXSIZE is an Int32 word: a larger bound would be stored negative.
    if (maxsize > 0x7fffffff) throw new RangeError(`maxsize must be at most ${0x7fffffff}, not ${maxsize}`)
    return new this(Ring.create(maxsize > 0 ? maxsize : 0, options.bufferSize))
  }
  static rebuild<T extends QueueCore>(this: new (ring: Ring) => T, state: { sab: SharedArrayBuffer }): T {
    return new this(new Ring(new Int32Array(state.sab)))
  }
  reduce(): { sab: SharedArrayBuffer } {
    return { sab: this.i32.buffer as SharedArrayBuffer }
  }

  protected checkOpen(): void {
    if (this.closed) throw new ValueError(`${this.constructor.name.replace(/Core$/, '')} is closed`)
  }

  // --- put ---------------------------------------------------------------------------------

  /**
   * Encodes the item first: a value that cannot be sent throws here and the queue is unchanged.
   * `onLoop`: the put runs on an event loop (coro_put), so it never parks the thread waiting for
   * room. `block`/`timeout` bound how long a bounded queue's feeder may wait for a slot.
   */
  putBegin(item: unknown, onLoop = false, block = true, timeout: Timeout = null): PutState {
    this.checkOpen()
    const st = new PutState(this.i32, encode(item))
    st.onLoop = onLoop
    if (this.i32[MAXSIZE] > 0) st.deadline = block ? deadlineOf('timeout', timeout) : 0
    return st
  }

  /**
   * A put is counted in the step that makes it visible (PUTS, under WLOCK, journaled), or when a
   * feeder accepts it (ACCEPTS) — and put() returns only after one of the two: so a producer
   * killed anywhere in put() leaves the counts exact, and a put() that returned is never lost.
   */
  putAttempt(st: PutState): undefined | Pending {
    if (st.answer !== undefined) return this.answered(st)
    const pending = this.pending
    if (pending !== undefined) {
      // The feeder holds at most MAX_BACKLOG of this handle's records: past that a producer with
      // no consumer would fill the supervisor's memory, so put() waits for the backlog to shrink.
      const backlog = Atomics.load(pending, 0)
      if (backlog >= MAX_BACKLOG) {
        st.bytes ??= Buffer.from(encoded().subarray(0, st.n))
        return park(st, pending, 0, backlog)
      }
    }
    const src = st.bytes ?? encoded()
    // A bounded queue reads GETS before its slot check: a take after it wakes the park below.
    const gets = this.i32[MAXSIZE] > 0 ? Atomics.load(this.i32, GETS) : 0
    let r = this.writeNow(src, st.n)
    // On an event loop the record goes to the feeder at once: waiting for room would park the loop.
    if (r === 'busy' && !st.onLoop) r = this.writeSoon(src, st.n)
    if (r === 'done') return undefined
    // Waiting (for a slot here, or for the feeder's answer): the scratch buffer will be reused.
    if (r === 'full') {
      st.bytes ??= Buffer.from(encoded().subarray(0, st.n))
      return park(st, this.i32, GETS, gets)
    }
    this.toFeeder(st, st.bytes ?? encoded())
    return st.answer === undefined ? undefined : this.answered(st)
  }

  /**
   * Whether a put() the feeder takes must wait until the feeder has counted it: for a bounded
   * queue (the feeder decides whether a slot is free) and a JoinableQueue (a join() right after
   * the put() must wait for the item). Elsewhere the feeder counts a record when it arrives, and
   * qsize() is approximate, as Python's is, but never drifts: a record counts once it is sent.
   */
  protected waitsForFeeder(): boolean {
    return this.i32[MAXSIZE] > 0
  }

  /**
   * Writes the record now if WLOCK is free, the ring has room and this handle has nothing at the
   * feeder (whose records go first); 'full' when a bounded queue has no free slot.
   */
  private writeNow(src: Uint8Array, n: number): 'done' | 'full' | 'busy' {
    const ring = this.ring
    if (LEN + n > ring.capacity || this.backlogged() || !ring.tryLockWriter()) return 'busy'
    try {
      if (this.i32[MAXSIZE] > 0 && ring.count() >= this.i32[MAXSIZE]) return 'full'
      return ring.tryWriteRecord(src, n) ? 'done' : 'busy'
    } finally {
      ring.wlock.release()
    }
  }

  private backlogged(): boolean {
    return this.pending !== undefined && Atomics.load(this.pending, 0) > 0
  }

  /**
   * A consumer usually makes room (and the feeder drains this handle's backlog) within
   * microseconds: wait for that a little (ROOM_WAIT_MS) rather than hand every record of a fast
   * producer to the feeder, which is far slower per record. Past that the feeder takes over, so
   * put() never waits long.
   */
  private writeSoon(src: Uint8Array, n: number): 'done' | 'full' | 'busy' {
    const ring = this.ring
    if (LEN + n > ring.capacity) return 'busy'
    const deadline = performance.now() + ROOM_WAIT_MS
    for (;;) {
      const left = deadline - performance.now()
      const backlog = this.pending === undefined ? 0 : Atomics.load(this.pending, 0)
      if (backlog > 0) {
        if (left <= 0) return 'busy'
        Atomics.wait(this.pending!, 0, backlog, left) // keep this handle's order: feeder first
        continue
      }
      const seq = ring.wantRoom()
      const wstate = Atomics.load(this.i32, WSTATE)
      const r = this.writeNow(src, n)
      if (r !== 'busy' || left <= 0) return r
      if (wstate === 0) Atomics.wait(this.i32, SPACE_SEQ, seq, left) // no room
      else Atomics.wait(this.i32, WSTATE, wstate, Math.min(left, 0.05)) // another writer
    }
  }

  /** Hands the record to the feeder; put() returns once the feeder has accepted it (answered). */
  private toFeeder(st: PutState, src: Uint8Array): void {
    // The feeder first: out of fds for its thread this throws (OSError), before anything is counted.
    feederPort()
    this.pending ??= new Int32Array(new SharedArrayBuffer(4))
    Atomics.add(this.pending, 0, 1)
    fedHandles.add(this)
    if (this.waitsForFeeder()) {
      st.answer = new Int32Array(new SharedArrayBuffer(4))
      st.token = `${threadId}.${++feedSeq}`
    }
    const deadline = this.i32[MAXSIZE] > 0 ? performance.timeOrigin + st.deadline : 0
    feed(this.ring, src, st.n, this.pending, st.answer, deadline, st.token)
  }

  private answered(st: PutState): undefined | Pending {
    const a = Atomics.load(st.answer!, 0)
    if (a === ANSWER_ACCEPTED) return undefined
    if (a === ANSWER_REFUSED) throw new Full()
    return park(st, st.answer!, 0, 0)
  }

  /**
   * put()'s deadline passed or its signal aborted it. Before the feeder has it: Full. After: the
   * feeder decides (it knows the deadline), and an abort asks it to give the record up, if it has
   * not accepted it yet; either way its answer stands.
   */
  putExpire(st: PutState): Committed {
    if (st.answer === undefined) throw new Full()
    if (st.aborted && !st.cancelled && this.i32[MAXSIZE] > 0) {
      st.cancelled = true
      cancelFeed(this.ring, st.token)
    }
    return COMMITTED
  }

  /**
   * Puts back an item whose taker died before it had it (a manager's client killed while its
   * get() was answered): at the end of the queue, and not one more unfinished item.
   */
  async requeue(item: unknown): Promise<void> {
    const st = this.putBegin(item, true)
    await coroBlockOn(st, () => this.putAttempt(st), Infinity, () => this.putExpire(st), undefined)
    Atomics.add(this.i32, REQUEUED, 1) // after the put counted it: join() never sees one too few
  }

  // --- get ---------------------------------------------------------------------------------

  getBegin(): GetState {
    this.checkOpen()
    return new GetState(this.i32)
  }

  getAttempt(st: GetState): unknown {
    const r = this.ring.takeAttempt(st, decode)
    if (r === EOF) throw new Error('unreachable: a queue has no writer that closes')
    return r
  }

  /** Timeout or abort: nothing was taken unless a large record is already streaming out. */
  getExpire(st: GetState): Committed {
    if (st.phase === 1 && st.buf) return COMMITTED
    if (st.phase === 1) {
      // Still discarding a dead reader's record: SKIP keeps the progress for the next reader.
      st.phase = 0
      this.ring.rlock.release()
    }
    throw new Empty()
  }

  // --- the rest ------------------------------------------------------------------------------

  qsize(): number {
    this.ring.settle()
    return Math.max(0, this.ring.count())
  }
  empty(): boolean {
    this.checkOpen()
    return Atomics.load(this.i32, TAIL) === Atomics.load(this.i32, HEAD)
  }
  full(): boolean {
    if (this.i32[MAXSIZE] === 0) return false
    this.ring.settle()
    return this.ring.count() >= this.i32[MAXSIZE]
  }
  get maxsize(): number {
    return this.i32[MAXSIZE]
  }

  close(): void {
    this.closed = true
  }

  /** joinThread()'s attempt: done once the feeder wrote every record this handle gave it. */
  joinThreadAttempt(): undefined | Pending {
    if (!this.closed) throw new ValueError('joinThread() needs close() first: the queue is not closed')
    return this.flushedAttempt()
  }

  flushedAttempt(): undefined | Pending {
    const pending = this.pending
    const n = pending ? Atomics.load(pending, 0) : 0
    return n === 0 ? undefined : park(this, pending!, 0, n)
  }

  /**
   * Python's cancel_join_thread(): this thread's process may end before the feeder has written
   * its items. They are not lost (the feeder outlives the thread), only maybe not yet in the queue.
   */
  cancelJoinThread(): void {
    this.joinCancelled = true
  }
  joinCancelled = false

  describe(): string {
    return `size=${this.qsize()}${this.maxsize ? `, maxsize=${this.maxsize}` : ''}${this.closed ? ', closed' : ''}`
  }
}

/** Handles of this thread that gave records to the feeder. */
const fedHandles = new Set<QueueCore>()
let feedSeq = 0

/**
 * At the end of its process, this thread waits until the feeder has written every record its
 * handles gave it, as a Python process flushes its queues' feeder threads before it exits (Q-22):
 * so a parent that joins a producer finds all its items in the queue, ahead of anything put after
 * the join.
 */
atProcessEnd(FLUSH_QUEUES, async () => {
  for (const core of fedHandles) {
    if (!core.joinCancelled) await coroBlockOn(core, () => core.flushedAttempt(), Infinity, () => PENDING, undefined)
  }
})

/** JoinableQueue: counts unfinished items; join() waits until every one is marked done. */
export class JoinableQueueCore extends QueueCore {
  protected override waitsForFeeder(): boolean {
    return true
  }

  taskDone(): void {
    const i32 = this.i32
    this.ring.settle()
    for (;;) {
      const done = Atomics.load(i32, DONE)
      if (this.unfinishedAfter(done) <= 0) throw new ValueError('task_done() called too many times')
      if (Atomics.compareExchange(i32, DONE, done, (done + 1) | 0) === done) {
        Atomics.notify(i32, DONE)
        return
      }
    }
  }

  /** Items put and not marked done, given DONE read first (the counts only grow). */
  private unfinishedAfter(done: number): number {
    const requeued = Atomics.load(this.i32, REQUEUED) // before the counts that include them
    return (Atomics.load(this.i32, PUTS) + Atomics.load(this.i32, ACCEPTS) - requeued - done) | 0
  }

  joinAttempt(): undefined | Pending {
    this.ring.settle()
    const done = Atomics.load(this.i32, DONE)
    if (this.unfinishedAfter(done) <= 0) return undefined
    // A writer mid-step may be killed there, leaving a count to undo: look again after a while.
    return park(this, this.i32, DONE, done, this.ring.wlock.holder() !== 0 ? DEAD_OWNER_CHECK_MS : Infinity)
  }

  unfinished(): number {
    this.ring.settle()
    return Math.max(0, this.unfinishedAfter(Atomics.load(this.i32, DONE)))
  }

  override describe(): string {
    return `${super.describe()}, unfinished=${this.unfinished()}`
  }
}

/** SimpleQueue: unbounded, no timeouts; a put that fits is visible at once. */
export class SimpleQueueCore extends QueueCore {
  protected override checkOpen(): void {
    if (this.closed) throw new ValueError('SimpleQueue is closed (handle is closed)')
  }
}
