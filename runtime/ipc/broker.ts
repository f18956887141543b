// Shared objects inside queue items and pipe messages. A SharedArrayBuffer cannot travel as
// bytes, so the sender stores the object's record (which holds its SABs) with the broker — the
// supervisor at the root of the thread tree, reached through the thread's feeder port and the
// supervisors in between — and writes only an id. The receiver, possibly parked in a blocking
// get(), fetches the record synchronously: it posts the request with a reply port, sleeps on a
// word until the broker has answered, and takes the answer with receiveMessageOnPort.
import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { feederPort } from './feeder-client.js'
import type { Reduced } from '../core/transfer.js'
import { OSError } from '../core/errors.js'

export type BrokerMessage =
  | { op: 'store'; id: string; record: Reduced }
  | { op: 'fetch'; id: string; reply: MessagePort; done: SharedArrayBuffer }

/** Stores a shared object's record; returns the id that stands for it in the bytes. */
export function storeShared(record: Reduced): string {
  const id = `${process.pid}.${Date.now().toString(36)}.${crypto.getRandomValues(new Uint32Array(2)).join('.')}`
  feederPort().postMessage({ op: 'store', id, record } satisfies BrokerMessage)
  return id
}

/** Fetches (once) the record stored under `id`, blocking this thread until the broker answers. */
export function fetchShared(id: string): Reduced {
  const { port1, port2 } = new MessageChannel()
  const done = new Int32Array(new SharedArrayBuffer(4))
  feederPort().postMessage({ op: 'fetch', id, reply: port2, done: done.buffer as SharedArrayBuffer } satisfies BrokerMessage, [port2])
  try {
    // A blocking wait also under coro_get(): decoding runs inside the ring's attempt, which is
    // synchronous in both styles, and the item must not leave the ring before it decodes. The
    // broker (a supervisor thread) answers within microseconds; 30 s bounds a broker that is gone.
    if (Atomics.wait(done, 0, 0, 30_000) === 'timed-out') throw new OSError(`the shared object ${id} did not arrive from the broker within 30 s`)
    const m = receiveMessageOnPort(port1)
    if (!m) throw new OSError(`the broker answered without the shared object ${id}`)
    return m.message as Reduced
  } finally {
    port1.close()
  }
}

// --- the broker side (in a supervisor) --------------------------------------------------------

const stored = new Map<string, Reduced>()
const waiting = new Map<string, { reply: MessagePort; done: SharedArrayBuffer }>()

function answer(record: Reduced, reply: MessagePort, done: SharedArrayBuffer): void {
  reply.postMessage(record)
  reply.close()
  const word = new Int32Array(done)
  Atomics.store(word, 0, 1)
  Atomics.notify(word, 0)
}

/**
 * Handles a broker message in a supervisor: passes it up when there is a supervisor above
 * (`upstream`), else keeps stores and answers fetches (a fetch may arrive before its store).
 */
export function handleBrokerMessage(m: BrokerMessage, upstream: MessagePort | undefined): void {
  if (upstream) {
    upstream.postMessage(m, m.op === 'fetch' ? [m.reply] : [])
    return
  }
  if (m.op === 'store') {
    const w = waiting.get(m.id)
    if (w) {
      waiting.delete(m.id)
      answer(m.record, w.reply, w.done)
    } else stored.set(m.id, m.record)
    return
  }
  const record = stored.get(m.id)
  if (record) {
    stored.delete(m.id)
    answer(record, m.reply, m.done)
  } else waiting.set(m.id, { reply: m.reply, done: m.done })
}
