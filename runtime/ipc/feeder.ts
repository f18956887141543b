// The feeder, run in a supervisor thread: writes the records producers could not write
// themselves, one queue at a time in arrival order, streaming in as readers make room a record
// larger than the ring. It waits with the awaitable loop, so the supervisor keeps handling process
// exits meanwhile.
//
// A record counts (ACCEPTS) from the moment the feeder accepts it, and the put() that gave it
// returns only then: at once for an unbounded queue, once a slot is free for a bounded one (or
// never: the put's deadline passed, or it was aborted, and the answer is a refusal).
import { Ring } from './ring.js'
import { ANSWER_ACCEPTED, ANSWER_REFUSED } from './feeder-client.js'
import { PENDING, coroBlockOn, type Waiter } from '../core/wait.js'

export interface FeedMessage {
  op: 'feed'
  queue: SharedArrayBuffer
  id: number
  bytes: ArrayBuffer
  pending: SharedArrayBuffer
  /** Where the put() that waits for the feeder's decision reads it; none when it does not wait. */
  answer?: SharedArrayBuffer
  /** Epoch ms (performance.timeOrigin based) a bounded queue's put waits for a slot; 0: unbounded. */
  deadline: number
  token: string
}

export interface FeedCancelMessage {
  op: 'feed-cancel'
  id: number
  token: string
}

interface Item {
  m: FeedMessage
  accepted: boolean
  cancelled: boolean
  /** Sent again: its reader died while streaming it out (the producer counted it down already). */
  again?: boolean
}

interface Backlog {
  ring: Ring
  items: Item[]
  /** Index of the next item to write: shift() would cost O(backlog) per record. */
  next: number
}

const backlogs = new Map<number, Backlog>()
const LEN = 4

export function enqueueFeed(m: FeedMessage): void {
  const item: Item = { m, accepted: false, cancelled: false }
  const b = backlogOf(m)
  if (m.deadline === 0) {
    b.ring.accept()
    answer(item, ANSWER_ACCEPTED)
  }
  push(m.id, b, item)
}

function backlogOf(m: FeedMessage): Backlog {
  return backlogs.get(m.id) ?? { ring: new Ring(new Int32Array(m.queue)), items: [], next: 0 }
}

function push(id: number, b: Backlog, item: Item): void {
  b.items.push(item)
  if (backlogs.get(id) !== b) {
    backlogs.set(id, b)
    void drain(id, b)
  }
}

/**
 * A record streamed in (larger than the ring): kept until readers are past it, and sent again,
 * at the end of the queue, if the reader taking it died and the next one discarded the rest.
 */
async function watchStreamed(item: Item, ring: Ring, end: number): Promise<void> {
  const w: Waiter = { i32: ring.i32, waitIndex: 0, waitValue: 0, waitCapMs: Infinity }
  await coroBlockOn(w, () => ring.passedAttempt(end, w), Infinity, () => PENDING, undefined)
  if (!ring.lostAt(end)) {
    release(item)
    return
  }
  ring.acceptAgain()
  const again: Item = { m: item.m, accepted: true, cancelled: false, again: true }
  push(item.m.id, backlogOf(item.m), again)
}

/** Gives the record's memory back now: this thread's heap may not see a full GC for a long time. */
function release(item: Item): void {
  ;(item.m.bytes as ArrayBuffer & { resize?: (n: number) => void }).resize?.(0)
}

/** An aborted put: its record is given up unless it was accepted already (then it stands). */
export function cancelFeed(m: FeedCancelMessage): void {
  const b = backlogs.get(m.id)
  if (!b) return
  for (let k = b.next; k < b.items.length; k++) {
    const item = b.items[k]
    if (item.m.token !== m.token) continue
    item.cancelled = true
    b.ring.wakeSlotWaiters() // it may be waiting for a slot: let it see the cancel
    return
  }
}

function answer(item: Item, value: number): void {
  item.accepted = value === ANSWER_ACCEPTED
  if (!item.m.answer) return
  const word = new Int32Array(item.m.answer)
  Atomics.store(word, 0, value)
  Atomics.notify(word, 0)
}

async function drain(id: number, b: Backlog): Promise<void> {
  try {
    while (b.next < b.items.length) {
      const item = b.items[b.next]
      let streamedTo: number | undefined
      if (item.accepted || (await acceptWhenFree(b.ring, item))) streamedTo = await writeRecord(b.ring, new Uint8Array(item.m.bytes))
      b.items[b.next++] = undefined as never
      if (b.next > 1024 && b.next * 2 > b.items.length) {
        b.items = b.items.slice(b.next)
        b.next = 0
      }
      if (streamedTo === undefined) release(item)
      else void watchStreamed(item, b.ring, streamedTo)
      if (item.again) continue
      const pending = new Int32Array(item.m.pending)
      Atomics.sub(pending, 0, 1)
      Atomics.notify(pending, 0)
    }
  } finally {
    backlogs.delete(id)
  }
}

/** A bounded queue's record: accepted once a slot is free, refused at its deadline or on a cancel. */
async function acceptWhenFree(ring: Ring, item: Item): Promise<boolean> {
  const deadline = item.m.deadline - performance.timeOrigin // on this thread's performance.now() clock
  const w: Waiter = { i32: ring.i32, waitIndex: 0, waitValue: 0, waitCapMs: Infinity }
  const accepted = await coroBlockOn(w, () => (item.cancelled ? false : ring.acceptAttempt(w)), deadline, () => false, undefined)
  answer(item, accepted ? ANSWER_ACCEPTED : ANSWER_REFUSED)
  return accepted
}

/**
 * Writes one accepted record under WLOCK: whole, once there is room for all of it, when it fits in
 * the ring (a reader then never sees part of it, so a reader killed while taking it cannot lose
 * it); else streamed in, committing each part as soon as it is in the ring, and then returns
 * where it ends.
 */
async function writeRecord(ring: Ring, payload: Uint8Array): Promise<number | undefined> {
  const w: Waiter = { i32: ring.i32, waitIndex: 0, waitValue: 0, waitCapMs: Infinity }
  await coroBlockOn(w, () => ring.lockAttempt(ring.wlock, w), Infinity, () => PENDING, undefined)
  try {
    if (LEN + payload.length <= ring.capacity) {
      await coroBlockOn(w, () => ring.roomAttempt(LEN + payload.length, w), Infinity, () => PENDING, undefined)
      if (!ring.readerClosed()) ring.tryWriteRecord(payload, payload.length, true)
      return undefined
    }
    const header = Buffer.allocUnsafe(LEN)
    header.writeUInt32LE(payload.length, 0)
    for (const part of [header, payload]) {
      for (let off = 0; off < part.length; ) {
        off += await coroBlockOn(w, () => ring.writeSome(part, off, part.length, w), Infinity, () => PENDING, undefined)
      }
    }
    return ring.tail()
  } finally {
    ring.wlock.release()
  }
}
