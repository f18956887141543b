// The feeder, run in a supervisor thread: writes the records producers could not write
// themselves, one queue at a time in arrival order, streaming each in as readers make room. It
// waits with the awaitable loop, so the supervisor keeps handling process exits meanwhile.
import { Ring } from './queue.js'
import { PENDING, coroBlockOn, type Waiter } from '../core/wait.js'

export interface FeedMessage {
  op: 'feed'
  queue: SharedArrayBuffer
  id: number
  bytes: ArrayBuffer
  pending: SharedArrayBuffer
}

interface Backlog {
  ring: Ring
  items: FeedMessage[]
  /** Index of the next item to write: shift() would cost O(backlog) per record. */
  next: number
}

const backlogs = new Map<number, Backlog>()

export function enqueueFeed(m: FeedMessage): void {
  const b = backlogs.get(m.id)
  if (b) {
    b.items.push(m)
    return
  }
  const fresh: Backlog = { ring: new Ring(new Int32Array(m.queue)), items: [m], next: 0 }
  backlogs.set(m.id, fresh)
  void drain(m.id, fresh)
}

async function drain(id: number, b: Backlog): Promise<void> {
  try {
    while (b.next < b.items.length) {
      const m = b.items[b.next]
      await writeRecord(b.ring, new Uint8Array(m.bytes))
      b.items[b.next++] = undefined as never
      if (b.next > 1024 && b.next * 2 > b.items.length) {
        b.items = b.items.slice(b.next)
        b.next = 0
      }
      // Give the memory back now: this thread's heap may not see a full GC for a long time.
      ;(m.bytes as ArrayBuffer & { resize?: (n: number) => void }).resize?.(0)
      const pending = new Int32Array(m.pending)
      Atomics.sub(pending, 0, 1)
      Atomics.notify(pending, 0)
    }
  } finally {
    backlogs.delete(id)
  }
}

/** Writes one record under WLOCK, committing each part as soon as it is in the ring. */
async function writeRecord(ring: Ring, payload: Uint8Array): Promise<void> {
  const w: Waiter = { i32: ring.i32, waitIndex: 0, waitValue: 0, waitCapMs: Infinity }
  await coroBlockOn(w, () => ring.lockAttempt(ring.wlock, w), Infinity, () => PENDING, undefined)
  try {
    const header = Buffer.allocUnsafe(4)
    header.writeUInt32LE(payload.length, 0)
    for (const part of [header, payload]) {
      for (let off = 0; off < part.length; ) {
        off += await coroBlockOn(w, () => ring.writeSome(part, off, part.length, w), Infinity, () => PENDING, undefined)
      }
    }
  } finally {
    ring.wlock.release()
  }
}
