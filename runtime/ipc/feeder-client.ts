// The producer side of the feeder (see queue.ts): hands a record that cannot be written now to
// the feeder, which lives in the supervisor thread that started this thread (or in this thread's
// own supervisor), so it outlives this thread.
import { MessageChannel, type MessagePort } from 'node:worker_threads'

let port: MessagePort | undefined
/**
 * Starts (once) this thread's own supervisor and returns it. The process layer above provides it
 * (process.ts, on load), so that this layer does not import the one that starts threads.
 */
let supervisor: (() => { postMessage(m: unknown, transfer: MessagePort[]): void }) | undefined
/** The port to the supervisor that started this thread, when one did (set by the bootstrap). */
let inherited: MessagePort | undefined

export function provideSupervisor(start: typeof supervisor): void {
  supervisor = start
}

export function installFeederPort(p: MessagePort): void {
  port = inherited = p
  p.unref()
}

/** A new port to the supervisor above, for this thread's own supervisor to pass broker messages up. */
export function upstreamPort(): MessagePort | undefined {
  if (!inherited) return undefined
  const channel = new MessageChannel()
  inherited.postMessage({ op: 'connect', port: channel.port2 }, [channel.port2])
  return channel.port1
}

export function feederPort(): MessagePort {
  if (!port) {
    if (!supervisor) throw new Error('aioprocessing: no process supervisor is provided in this thread (process.ts was not loaded)')
    const channel = new MessageChannel()
    supervisor().postMessage({ op: 'connect', port: channel.port2 }, [channel.port2])
    port = channel.port1
    port.unref()
  }
  return port
}

/**
 * This thread's own supervisor ended (it failed to start, for one): the next record fed connects
 * to its successor. Before, every later fed put went to the dead one's port and was lost.
 */
export function ownSupervisorGone(): void {
  if (port === undefined || port === inherited) return
  port.close()
  port = undefined
}

/** A fed put's answer word: 0 while the feeder has not decided. */
export const ANSWER_ACCEPTED = 1
/** A bounded queue had no free slot before the put's deadline, or the put was aborted in time. */
export const ANSWER_REFUSED = 2

/**
 * Sends `src[0..n)` as one record for `ring`. `pending[0]` was counted up and the feeder counts it
 * down once the record is written (or refused); it stores its decision in `answer[0]`, when given. A bounded
 * queue's `deadline` (epoch ms, `performance.timeOrigin` based) bounds its wait for a slot; 0 for
 * an unbounded queue, whose records are accepted on arrival. `token` names the put for a cancel.
 */
export function feed(ring: { readonly i32: Int32Array; readonly id: number }, src: Uint8Array, n: number, pending: Int32Array, answer: Int32Array | undefined, deadline: number, token: string): void {
  // Resizable, so that the feeder can release its memory as soon as the record is written.
  const bytes = new ArrayBuffer(n, { maxByteLength: n })
  new Uint8Array(bytes).set(src.subarray(0, n))
  feederPort().postMessage({ op: 'feed', queue: ring.i32.buffer, id: ring.id, bytes, pending: pending.buffer, answer: answer?.buffer, deadline, token }, [bytes])
}

/** An aborted put asks the feeder to give its record up, if it has not accepted it yet. */
export function cancelFeed(ring: { readonly id: number }, token: string): void {
  feederPort().postMessage({ op: 'feed-cancel', id: ring.id, token })
}
