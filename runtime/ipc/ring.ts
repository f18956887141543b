// The byte ring under a queue and a connection: length-prefixed records in shared memory, its
// header words, and the robust read and write steps (a thread killed mid-step tears nothing).
// Apart from queue.ts, which adds items, counts and the feeder on top, so that what moves bytes
// only (a connection's pipe, the I/O thread, a pool worker's pipe) loads none of the rest.
//
// word  name        meaning
// 0-1   RLOCK       read-side futex mutex (sync/lock.ts: its word 0 is the holder's id): one consumer reads a record at a time
// 2-3   WLOCK       write-side futex mutex (likewise): one producer writes a record at a time
// 4     HEAD        bytes consumed (wrapping int32; ring index = HEAD & (CAPACITY-1))
// 5     TAIL        bytes committed; readers sleep on it while a large record streams in
// 6     PUTS        records producers committed themselves (under WLOCK; wrapping)
// 7     GETS        records taken (under RLOCK; wrapping); a bounded queue's full put sleeps on it
// 8     MAXSIZE     0 = unbounded
// 9     DATA_SEQ    bumped after every commit; consumers waiting for data sleep on it
// 10    SPACE_SEQ   bumped after every consume; the feeder waiting for room sleeps on it
// 11    DONE        JoinableQueue: task_done() calls; join() sleeps on it
// 12    SKIP        bytes of the record being read that are not consumed yet (a reader that takes
//                   RLOCK over from a dead one discards them)
// 13    CAPACITY    ring size in bytes, a power of two
// 14    ID          a random id, so the feeder can tell queues apart across messages
// 15    FLAGS       WRITER_CLOSED=1 | READER_CLOSED=2 | FAILED=4 (a socket was cut off mid-stream)
//                   | SOCKET=8 (the I/O thread pumps this ring to a socket)
// 16    UNSENT      a socket's outgoing ring: messages sent and not yet handed to the kernel
// 17    WANT_ROOM   1 while a writer sleeps on SPACE_SEQ; readers wake it only once a quarter of
//                   the ring is free, so a full ring is not refilled one record per wake-up
// 18    READERS     connection handles that read this ring (counted like file descriptors)
// 19    WRITERS     connection handles that write it; the last close() closes the end
// 20    ACCEPTS     records a feeder accepted (counted before the put() that gave it returns)
// 21    REQUEUED    items put back (requeue(), or a feeder's record lost with a killed reader)
//                   after a taker died: counted again in PUTS or ACCEPTS, still one unfinished item
// 22    DISCARDED   where the last record a reader discarded (its reader had died) ended: the
//                   feeder that streamed that record in sends it again
// 32-34 J_TAIL, J_PUTS, J_WRITING  the writer's journal: the TAIL and PUTS its commit sets, and
//                   1 while that step is under way
// 48-50 J_HEAD, J_SKIP, J_GETS     the reader's journal: the HEAD, SKIP and GETS its step sets
// The journals have a cache line each (words 32 and 48, 64 bytes apart): a producer and a
// consumer writing them on every item must not fight over one line.
//
// Counts are derived, never stored apart from the data: qsize() = PUTS + ACCEPTS - GETS, and a
// JoinableQueue's unfinished items = PUTS + ACCEPTS - REQUEUED - DONE. An item counts before anyone can take
// it (a consumer's task_done() must find it counted) and stops counting after it is gone. Each
// side changes its words in a step that a kill cannot tear: it writes its journal, and whoever
// takes the lock over from a dead holder uses it to finish the step if its commit point (the
// store of TAIL or HEAD) was passed, or to undo it if not. Readers of the counts (qsize(),
// join(), task_done()) take a dead holder's lock over first, so the counts are exact at once.
// Bytes from HEADER_BYTES: the ring. A record is a u32 length then the serialized item.
//
// The internal locks are robust: a thread that ends while holding one (terminate() can stop it
// anywhere) is detected through the liveness table and its lock is taken over; a reader that ended
// mid-record leaves SKIP behind, and the next reader discards the rest of that record.

import { PENDING, park, type Pending, type Waiter } from '../core/wait.js'
import { LockCore } from '../sync/lock.js'
import { ownerEnded } from '../core/liveness.js'
import { OSError } from '../core/errors.js'

export const RSTATE = 0
export const WSTATE = 2
export const HEAD = 4
export const TAIL = 5
export const PUTS = 6
export const GETS = 7
export const MAXSIZE = 8
export const DATA_SEQ = 9
export const SPACE_SEQ = 10
export const DONE = 11
export const SKIP = 12
export const CAPACITY = 13
export const ID = 14
export const FLAGS = 15
export const WRITER_CLOSED = 1
export const READER_CLOSED = 2
export const FAILED = 4
export const SOCKET = 8
export const UNSENT = 16
export const WANT_ROOM = 17
export const READERS = 18
export const WRITERS = 19
export const ACCEPTS = 20
export const REQUEUED = 21
export const DISCARDED = 22
export const J_TAIL = 32
export const J_PUTS = 33
export const J_WRITING = 34
export const J_HEAD = 48
export const J_SKIP = 49
export const J_GETS = 50
export const CUT_OFF = 'the connection was cut off: the peer broke the framing protocol, or reset or ended it inside a message'
/** Returned by Ring.takeAttempt once the writer closed and every record was taken. */
export const EOF: unique symbol = Symbol('aioprocessing.eof')
export const HEADER_WORDS = 64
export const HEADER_BYTES = HEADER_WORDS * 4
export const LEN = 4
/** Default ring size: an idle queue costs this plus 64 bytes of header. */
export const DEFAULT_CAPACITY = 32 * 1024
/**
 * How long a sleeper on an internal lock waits before it checks whether the holder died. A poll:
 * a thread that is terminated runs no code of ours, and its supervisor learns of the end only in
 * its own event loop, long after; the holder's id in the lock word makes each check one load.
 */
export const DEAD_OWNER_CHECK_MS = 50

/** The shared part of a queue: header words and ring, used by handles and by the feeder. */
export class Ring {
  readonly bytes: Buffer
  readonly mask: number
  readonly rlock: LockCore
  readonly wlock: LockCore
  constructor(readonly i32: Int32Array) {
    const sab = i32.buffer as SharedArrayBuffer
    this.bytes = Buffer.from(sab, HEADER_BYTES, i32[CAPACITY])
    this.mask = i32[CAPACITY] - 1
    this.rlock = new LockCore(i32.subarray(RSTATE, RSTATE + 2))
    this.wlock = new LockCore(i32.subarray(WSTATE, WSTATE + 2))
  }

  static create(maxsize: number, capacity = DEFAULT_CAPACITY): Ring {
    if (!Number.isInteger(Math.log2(capacity)) || capacity < 64) throw new RangeError(`capacity must be a power of two >= 64, not ${capacity}`)
    const i32 = new Int32Array(new SharedArrayBuffer(HEADER_BYTES + capacity))
    i32[CAPACITY] = capacity
    i32[MAXSIZE] = maxsize
    // Not crypto's: its first use loads WebCrypto, ~1 ms in a main thread and ~5 ms in a worker
    // (a first pool's constructor paid it). An id only tells this process tree's queues apart.
    i32[ID] = (Math.random() * 0x1_0000_0000) | 0
    return new Ring(i32)
  }

  get id(): number {
    return this.i32[ID]
  }

  get capacity(): number {
    return this.mask + 1
  }

  /** Bytes committed so far (a wrapping position). */
  tail(): number {
    return Atomics.load(this.i32, TAIL)
  }

  /** Bytes that can be written now. */
  free(): number {
    return this.capacity - ((Atomics.load(this.i32, TAIL) - Atomics.load(this.i32, HEAD)) | 0)
  }

  /** Copies `src[from..to)` into the ring at byte position `pos` (wrapping). */
  put(pos: number, src: Uint8Array, from: number, to: number): void {
    const at = pos & this.mask
    const first = Math.min(to - from, this.capacity - at)
    this.bytes.set(src.subarray(from, from + first), at)
    if (first < to - from) this.bytes.set(src.subarray(from + first, to), 0)
  }

  /** Copies `n` ring bytes at `pos` (wrapping) into `dst` at `offset`. */
  get(pos: number, dst: Uint8Array, offset: number, n: number): void {
    const at = pos & this.mask
    const first = Math.min(n, this.capacity - at)
    dst.set(this.bytes.subarray(at, at + first), offset)
    if (first < n) dst.set(this.bytes.subarray(0, n - first), offset + first)
  }

  readLength(pos: number): number {
    const at = pos & this.mask
    if (at + LEN <= this.capacity) return this.bytes.readUInt32LE(at)
    const tmp = Buffer.allocUnsafe(LEN)
    this.get(pos, tmp, 0, LEN)
    return tmp.readUInt32LE(0)
  }

  writeLength(pos: number, n: number): void {
    const at = pos & this.mask
    if (at + LEN <= this.capacity) {
      this.bytes.writeUInt32LE(n, at)
      return
    }
    const tmp = Buffer.allocUnsafe(LEN)
    tmp.writeUInt32LE(n, 0)
    this.put(pos, tmp, 0, LEN)
  }

  /**
   * Makes bytes up to `tail` visible to readers and wakes one of them. A partial record (only the
   * feeder writes those) also wakes the reader streaming it, which sleeps on TAIL.
   */
  commit(tail: number, partial = false): void {
    const i32 = this.i32
    Atomics.store(i32, TAIL, tail)
    Atomics.add(i32, DATA_SEQ, 1)
    // All, not one: poll() and wait() sleep on DATA_SEQ too, and a wake-up taken by a poller
    // must not leave a reader asleep beside readable data.
    Atomics.notify(i32, DATA_SEQ)
    if (partial) Atomics.notify(i32, TAIL)
  }


  /**
   * One step of a reader (under RLOCK): the journal first, then HEAD (the commit point), then SKIP
   * and GETS. A reader that takes RLOCK over from a dead one finishes the step if HEAD moved.
   */
  private step(head: number, skip: number, gets: number): void {
    // Plain stores around the one atomic store of HEAD, which orders them (a store-release that
    // a takeover's atomic loads acquire): a seq-cst store each would cost more than the copy of
    // a small record.
    const i32 = this.i32
    i32[J_HEAD] = head
    i32[J_SKIP] = skip
    i32[J_GETS] = gets
    this.consume(head)
    if (i32[SKIP] !== skip) i32[SKIP] = skip
    if (gets !== i32[GETS]) {
      i32[GETS] = gets
      // A bounded queue's full put sleeps on GETS (all: one woken put may have been aborted).
      if (i32[MAXSIZE] > 0) Atomics.notify(i32, GETS)
    }
  }

  /**
   * Counts a whole record ending at `tail` and makes it visible (under WLOCK): the journal, PUTS,
   * then TAIL (the commit point). A feeder's records were counted when it accepted them.
   */
  private commitRecord(tail: number, counted: boolean, partial = false): void {
    const i32 = this.i32
    if (counted) {
      this.commit(tail, partial)
      return
    }
    // Plain stores ordered by the atomic store of TAIL, as in step().
    const puts = (i32[PUTS] + 1) | 0
    i32[J_TAIL] = tail
    i32[J_PUTS] = puts
    i32[J_WRITING] = 1
    i32[PUTS] = puts
    this.commit(tail, partial)
    i32[J_WRITING] = 0
  }

  /** Releases ring bytes up to `head`; wakes a writer waiting for room once a quarter is free. */
  consume(head: number): void {
    const i32 = this.i32
    Atomics.store(i32, HEAD, head)
    if (Atomics.load(i32, WANT_ROOM) !== 0 && this.free() >= this.capacity >> 2) {
      Atomics.store(i32, WANT_ROOM, 0)
      Atomics.add(i32, SPACE_SEQ, 1)
      Atomics.notify(i32, SPACE_SEQ)
    }
  }

  /**
   * A writer about to sleep for room: returns the SPACE_SEQ to sleep on, read before the flag is
   * raised, so a reader that frees room after the writer's last look either sees the flag or the
   * writer sees the room.
   */
  wantRoom(): number {
    const seq = Atomics.load(this.i32, SPACE_SEQ)
    Atomics.store(this.i32, WANT_ROOM, 1)
    return seq
  }

  /**
   * One step of taking an internal lock, robustly: the lock, or PENDING with `w` parked on it for
   * at most DEAD_OWNER_CHECK_MS, after which the holder is checked for having ended.
   */
  lockAttempt(lock: LockCore, w: Waiter): true | Pending {
    if (lock.tryAcquire() === true || this.takeOverDead(lock)) return true
    if (lock.acquireAttempt(w) === true) return true
    w.waitCapMs = DEAD_OWNER_CHECK_MS
    return PENDING
  }

  /** Takes `lock` from a holder that ended, and finishes the step it was killed in; false if the holder lives. */
  takeOverDead(lock: LockCore): boolean {
    if (!lock.takeOver(ownerEnded)) return false
    const i32 = this.i32
    if (lock === this.wlock) {
      if (Atomics.load(i32, J_WRITING) === 1) {
        // Committed: PUTS was stored before TAIL. Not committed: uncount the record.
        if (Atomics.load(i32, TAIL) !== Atomics.load(i32, J_TAIL)) Atomics.store(i32, PUTS, (Atomics.load(i32, J_PUTS) - 1) | 0)
        Atomics.store(i32, J_WRITING, 0)
      }
    } else if (Atomics.load(i32, HEAD) === Atomics.load(i32, J_HEAD)) {
      Atomics.store(i32, SKIP, Atomics.load(i32, J_SKIP))
      Atomics.store(i32, GETS, Atomics.load(i32, J_GETS))
    }
    return true
  }

  /**
   * A reader waits for data: woken by the commit's notify. A writer killed between its store of
   * TAIL and that notify would leave it asleep beside data, so while WLOCK is held it looks again
   * every DEAD_OWNER_CHECK_MS.
   */
  private parkForData(w: Waiter, index: number, value: number): Pending {
    return park(w, this.i32, index, value, this.wlock.holder() !== 0 ? DEAD_OWNER_CHECK_MS : Infinity)
  }

  /** A writer waits for room; likewise for a reader killed between its store of HEAD and its notify. */
  private parkForRoom(w: Waiter, seq: number): Pending {
    return park(w, this.i32, SPACE_SEQ, seq, this.rlock.holder() !== 0 ? DEAD_OWNER_CHECK_MS : Infinity)
  }

  /** Takes WLOCK if it is free (or its holder ended), without waiting. */
  tryLockWriter(): boolean {
    return this.wlock.tryAcquire() === true || this.takeOverDead(this.wlock)
  }

  /**
   * Before reading the counts: a holder of either lock that ended may have been killed inside its
   * step; take its lock over (finishing or undoing the step) and give it back.
   */
  settle(): void {
    this.settleLock(this.wlock)
    this.settleLock(this.rlock)
  }

  private settleLock(lock: LockCore): void {
    const holder = lock.holder()
    if (holder !== 0 && ownerEnded(holder) && this.takeOverDead(lock)) lock.release()
  }

  /** Records in the queue, including those a feeder accepted and has not written yet. */
  count(): number {
    const gets = Atomics.load(this.i32, GETS)
    return (Atomics.load(this.i32, PUTS) + Atomics.load(this.i32, ACCEPTS) - gets) | 0
  }

  /** An unbounded queue's feeder accepted a record: it counts from now on. */
  accept(): void {
    Atomics.add(this.i32, ACCEPTS, 1)
  }

  /**
   * A bounded queue's feeder: accepts a record once a slot is free, checking under WLOCK so that
   * no producer takes the slot meanwhile; else `w` parks until a take (GETS).
   */
  acceptAttempt(w: Waiter): true | Pending {
    const i32 = this.i32
    const gets = Atomics.load(i32, GETS)
    // A producer holds WLOCK only to copy one record in: look again shortly.
    if (!this.tryLockWriter()) return park(w, i32, GETS, gets, 1)
    try {
      if (this.count() < i32[MAXSIZE]) {
        this.accept()
        return true
      }
    } finally {
      this.wlock.release()
    }
    return park(w, i32, GETS, gets)
  }

  /**
   * A feeder that streamed in a record ending at byte `end`: true once readers are past it, else
   * `w` parks until they make room. Then lostAt(end) says whether it was taken or discarded.
   */
  passedAttempt(end: number, w: Waiter): true | Pending {
    const seq = this.wantRoom()
    if (((Atomics.load(this.i32, HEAD) - end) | 0) >= 0) return true
    return this.parkForRoom(w, seq)
  }

  /** Whether the record ending at `end` was discarded because its reader died while taking it. */
  lostAt(end: number): boolean {
    return Atomics.load(this.i32, DISCARDED) === end
  }

  /** A record the feeder sends again (lost with its reader) is counted as accepted, not as one more unfinished item. */
  acceptAgain(): void {
    this.accept()
    Atomics.add(this.i32, REQUEUED, 1)
  }

  /** Wakes whatever waits for a slot (a feeder's accept to see a cancel). */
  wakeSlotWaiters(): void {
    Atomics.notify(this.i32, GETS)
  }

  /**
   * Writes as much of `src[from..to)` as fits now and commits it (a part of a record, so a reader
   * streaming it wakes); the caller holds WLOCK. Returns the bytes written, or PENDING with `w`
   * parked on SPACE_SEQ when the ring is full.
   */
  writeSome(src: Uint8Array, from: number, to: number, w: Waiter): number | Pending {
    const seq = this.wantRoom()
    const free = this.free()
    if (free === 0) return this.parkForRoom(w, seq)
    const tail = Atomics.load(this.i32, TAIL)
    const k = Math.min(free, to - from)
    this.put(tail, src, from, from + k)
    this.commit((tail + k) | 0, true)
    return k
  }

  /** Whether the writing side closed (a connection's peer). */
  writerClosed(): boolean {
    return (Atomics.load(this.i32, FLAGS) & WRITER_CLOSED) !== 0
  }

  /** Marks the writing side closed and wakes every reader, which then sees EOF once drained. */
  closeWriter(): void {
    Atomics.or(this.i32, FLAGS, WRITER_CLOSED)
    Atomics.add(this.i32, DATA_SEQ, 1)
    Atomics.notify(this.i32, DATA_SEQ)
    Atomics.notify(this.i32, TAIL)
  }

  /** One more connection handle reads (`READERS`) or writes (`WRITERS`) this ring. */
  addHandle(writer: boolean): void {
    Atomics.add(this.i32, writer ? WRITERS : READERS, 1)
  }
  /** One handle closed; the last one closes that end, as closing the last dup of an fd does. */
  dropHandle(writer: boolean): void {
    if (Atomics.sub(this.i32, writer ? WRITERS : READERS, 1) !== 1) return
    if (writer) this.closeWriter()
    else this.closeReader()
  }

  markSocket(): void {
    Atomics.or(this.i32, FLAGS, SOCKET)
  }
  isSocket(): boolean {
    return (Atomics.load(this.i32, FLAGS) & SOCKET) !== 0
  }
  /** A message went into a socket's outgoing ring (the sender counts it; the I/O thread uncounts it). */
  countUnsent(delta: number): void {
    Atomics.add(this.i32, UNSENT, delta)
    if (delta < 0) Atomics.notify(this.i32, UNSENT)
  }
  /** Attempt: done once every message sent is with the kernel, or the socket is gone. */
  sentAttempt(w: Waiter): undefined | Pending {
    const n = Atomics.load(this.i32, UNSENT)
    return n <= 0 || this.failed() ? undefined : park(w, this.i32, UNSENT, n)
  }

  /** The socket behind this ring was cut off (bad frame, reset, EOF inside a message). */
  fail(): void {
    Atomics.or(this.i32, FLAGS, FAILED)
    this.closeWriter()
  }
  failed(): boolean {
    return (Atomics.load(this.i32, FLAGS) & FAILED) !== 0
  }

  readerClosed(): boolean {
    return (Atomics.load(this.i32, FLAGS) & READER_CLOSED) !== 0
  }

  /** Marks the reading side closed and wakes a writer waiting for room, which then fails. */
  closeReader(): void {
    Atomics.or(this.i32, FLAGS, READER_CLOSED)
    Atomics.add(this.i32, SPACE_SEQ, 1)
    Atomics.notify(this.i32, SPACE_SEQ)
  }

  /** Whether poll() would return true now. */
  readable(): boolean {
    return Atomics.load(this.i32, TAIL) !== Atomics.load(this.i32, HEAD) || this.writerClosed()
  }

  /** poll(): true once a record (or part of one) is there, or the writer closed; else `w` parks. */
  pollAttempt(w: Waiter): true | Pending {
    const seq = Atomics.load(this.i32, DATA_SEQ)
    return this.readable() ? true : this.parkForData(w, DATA_SEQ, seq)
  }

  /**
   * One step of taking the next record out: `finish(bytes, start, end, owned)` turns its bytes into
   * the result; unless `owned`, they are a view of the ring: copy what must outlive the call. Returns PENDING with
   * `st` parked, or EOF once the writer closed and nothing is left. A record longer than `limit`
   * throws and stays where it is.
   */
  takeAttempt<R>(st: GetState, finish: (bytes: Buffer, start: number, end: number, owned: boolean) => R, limit = Infinity): R | Pending | typeof EOF {
    const i32 = this.i32
    if (st.phase === 0) {
      const seq = Atomics.load(i32, DATA_SEQ)
      if (this.lockAttempt(this.rlock, st) === PENDING) return PENDING
      if (Atomics.load(i32, SKIP) > 0) {
        // The previous reader ended mid-record: discard what is left of it, then start over. The
        // feeder that streamed it in sees where it ended and sends it again.
        st.phase = 1
        st.len = Atomics.load(i32, SKIP)
        Atomics.store(i32, DISCARDED, (Atomics.load(i32, HEAD) + st.len) | 0)
        st.off = 0
        st.buf = undefined
        return this.stream(st, finish, limit)
      }
      const head = Atomics.load(i32, HEAD)
      const avail = (Atomics.load(i32, TAIL) - head) | 0
      if (avail < LEN) {
        const closed = this.writerClosed()
        this.rlock.release()
        if (closed && avail === 0) {
          if (this.failed()) throw new OSError(CUT_OFF)
          return EOF
        }
        return this.parkForData(st, DATA_SEQ, seq)
      }
      const n = this.readLength(head)
      if (n > limit) {
        this.rlock.release()
        throw new OSError('bad message length')
      }
      if (avail >= LEN + n) {
        const at = (head + LEN) & this.mask
        // The record is taken whether or not it decodes: one that cannot (a Python pickle on a
        // connection of ours) must not stay at the head with RLOCK held, wedging every later read.
        try {
          if (at + n <= this.capacity) return finish(this.bytes, at, at + n, false)
          const tmp = Buffer.allocUnsafe(n)
          this.get(head + LEN, tmp, 0, n)
          return finish(tmp, 0, n, true)
        } finally {
          this.step((head + LEN + n) | 0, 0, (i32[GETS] + 1) | 0)
          this.rlock.release()
        }
      }
      // Larger than what has arrived (only a record larger than the ring streams in): keep RLOCK
      // and stream it out as the writer streams it in.
      st.phase = 1
      st.buf = Buffer.allocUnsafe(n)
      st.len = n
      st.off = 0
      this.step((head + LEN) | 0, n, i32[GETS])
    }
    return this.stream(st, finish, limit)
  }

  private stream<R>(st: GetState, finish: (bytes: Buffer, start: number, end: number, owned: boolean) => R, limit: number): R | Pending | typeof EOF {
    const i32 = this.i32
    const tail = Atomics.load(i32, TAIL)
    const head = Atomics.load(i32, HEAD)
    const n = Math.min((tail - head) | 0, st.len - st.off)
    if (n > 0) {
      if (st.buf) this.get(head, st.buf, st.off, n)
      st.off += n
      this.step((head + n) | 0, st.len - st.off, st.off === st.len ? (i32[GETS] + 1) | 0 : i32[GETS])
    }
    if (st.off < st.len) {
      // The writer closes only after its last byte is in: closed now means the rest never comes.
      if (this.writerClosed() && ((Atomics.load(i32, TAIL) - Atomics.load(i32, HEAD)) | 0) === 0) {
        Atomics.store(i32, SKIP, 0)
        this.rlock.release()
        st.phase = 0
        throw new OSError('got end of file during message')
      }
      return this.parkForData(st, TAIL, tail)
    }
    this.rlock.release()
    st.phase = 0
    if (!st.buf) return this.takeAttempt(st, finish, limit) // finished discarding a dead reader's record
    return finish(st.buf, 0, st.len, true)
  }

  /**
   * Writes a whole record if it fits now without waiting; the caller holds WLOCK. `counted`: a
   * feeder's record, counted when it was accepted.
   */
  tryWriteRecord(src: Uint8Array, n: number, counted = false): boolean {
    if (this.free() < LEN + n) return false
    const tail = Atomics.load(this.i32, TAIL)
    this.writeLength(tail, n)
    this.put(tail + LEN, src, 0, n)
    this.commitRecord((tail + LEN + n) | 0, counted)
    return true
  }

  /** Attempt (under WLOCK): true once `n` bytes are free, else `w` parks until a reader makes room. */
  roomAttempt(n: number, w: Waiter): true | Pending {
    const seq = this.wantRoom()
    if (this.readerClosed() || this.free() >= n) return true
    return this.parkForRoom(w, seq)
  }
}

/** One call to get(): where it is in taking a record out. */
export class GetState implements Waiter {
  i32: Int32Array
  waitIndex = 0
  waitValue = 0
  waitCapMs = Infinity
  /** 0: not holding RLOCK; 1: holding it and streaming a large record (or discarding a dead reader's). */
  phase = 0
  buf: Buffer | undefined
  off = 0
  len = 0
  constructor(i32: Int32Array) {
    this.i32 = i32
  }
}
