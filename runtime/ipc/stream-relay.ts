// A relay between one end of a shared-memory pipe (connection.ts) and the streams of another
// process, in the event loop of the thread that owns them (the supervisor's, for a spawned
// process's DATA_IN_FD and DATA_OUT_FD). Records cross as frames of CPython's connection framing
// (framing.ts). So a process that shares no memory with us can be the far end of a pipe whose
// near end is used by code written for threads (a spawn-context pool worker,
// pool/pool-process-loop.ts).
//
// It never blocks its thread: it waits on the ring with Atomics.waitAsync and on the streams with
// their events. A frame the ring has no room for pauses the stream it came from (the kernel's
// buffer then pushes back on the writer); the relay ends once that stream has closed and every
// frame that came is in the ring, so the owner of the pipe may treat the far end as gone from
// then on.

import type { Socket } from 'node:net'
import { ConnectionCore, SendState } from './connection.js'
import { EOF, GetState, Ring } from './ring.js'
import { PENDING, coroBlockOn } from '../core/wait.js'
import { FrameReader, MAX_RELAYED_BYTES, framed, wholeMessages, type FrameSink } from './framing.js'

/** The near end a relay serves: its rings (as ConnectionCore.reduce gives them) and a word it bumps when records arrive. */
export interface RelayEnds {
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
  /** Word 0 is bumped (and notified) after records from the far end are in `tx`'s ring. */
  notify: SharedArrayBuffer
  /**
   * When given, each frame from the far end starts with this u32 (big-endian), which is not
   * relayed: anything else there (bytes the far end's own code wrote into the stream, which the
   * framing would read as a length, up to 1 GiB, and wait for) breaks the framing at once.
   */
  stamp?: number
}

/** Why a relay cut its far end off (its `broken` callback's argument). */
export const BROKE_FRAMING = 1
export const STOPPED_READING = 2
export type CutReason = typeof BROKE_FRAMING | typeof STOPPED_READING

/**
 * How long the far end has to close `from` after `to` closed before it counts as broken (ms). A
 * process that closed its task socket inside a task still writes that task's result: on a loaded
 * machine it took over 100 ms (the grace was 100), was killed first, and its task was lost.
 */
const CUT_GRACE_MS = 1000


/** The far end's two streams: one we write its records to, one we read its records from. */
export interface FarStreams {
  to: Socket
  from: Socket
}

/**
 * Relays between the streams `far` and the pipe end `ends` until `far.from` closes. Resolves once
 * every frame that came is in the ring (or the near end is gone); the near end is then closed, so
 * its peer reads end-of-file. `broken` is called when the far end breaks the framing, or stops
 * reading while it goes on (`to` closed, `from` not). An error writing to the far end (it is gone)
 * stops the writes only: what it wrote before it went is still read to the end.
 */
export function relay(far: FarStreams, ends: RelayEnds, broken: (why: CutReason) => void = () => undefined): Promise<void> {
  const { to, from } = far
  const end = new ConnectionCore(new Ring(new Int32Array(ends.rx)), new Ring(new Int32Array(ends.tx)), true)
  const notify = new Int32Array(ends.notify)
  const bump = (): void => {
    Atomics.add(notify, 0, 1)
    Atomics.notify(notify, 0)
  }
  const stop = new AbortController()
  /** `from` closed: the relay is over. */
  let closed = false
  /** `to` failed or closed: nothing more can reach the far end. */
  let cut = false
  /** We ended `to`: the near end has no more records for the far end. */
  let ended = false
  to.on('error', () => undefined) // 'close' follows
  whenClosed(to, () => {
    cut = true
    stop.abort()
    // The far end stopped reading while it still writes (its code closed its fd): what we send
    // it from now on is lost, and its owner would wait for answers for ever. A far end that is
    // ending closes `from` too, within microseconds.
    if (!ended && !closed) setTimeout(() => void (closed || broken(STOPPED_READING)), CUT_GRACE_MS).unref()
  })

  // Far → near: frames into the ring, in order; one bump per burst.
  const inbound: Buffer[] = []
  let writing: Promise<void> | undefined
  const writeIn = async (): Promise<void> => {
    await undefined // `writing` is set before this runs on
    while (inbound.length) {
      const st = new SendState(end.tx!.i32, inbound.shift()!)
      try {
        if (end.sendAttempt(st) === PENDING) {
          from.pause()
          bump() // the reader must hear of what is already in, to make room
          // A frame larger than the ring goes in part by part: the reader hears of each part.
          await coroBlockOn(st, () => {
            const r = end.sendAttempt(st)
            bump()
            return r
          }, Infinity, () => undefined, undefined, true)
          if (!closed) from.resume()
        }
      } catch {
        inbound.length = 0 // the near end is gone (its reader closed it): nobody reads what is left
      }
    }
    bump()
    writing = undefined
  }
  // A frame no child of ours sends (a negative or huge length): the streams are cut, and `broken` told.
  const cutOff = (): void => {
    from.destroy()
    to.destroy()
    broken(BROKE_FRAMING)
  }
  const whole = wholeMessages((payload) => inbound.push(payload))
  const sink = ends.stamp === undefined ? whole : stamped(whole, ends.stamp, cutOff)
  const reader = new FrameReader(MAX_RELAYED_BYTES, sink.start, sink.part, cutOff)
  from.on('data', (chunk: Buffer) => {
    if (reader.push(chunk)) writing ??= writeIn()
  })

  // Near → far: every record the ring has, as frames, in one write.
  const st = new GetState(end.rx!.i32)
  const take = (): Buffer | typeof PENDING | typeof EOF => end.rx!.takeAttempt(st, (bytes, from, to) => framed(bytes.subarray(from, to)))
  const writeOut = async (): Promise<void> => {
    for (;;) {
      let r = take()
      if (r === PENDING) {
        try {
          r = await coroBlockOn(st, take, Infinity, () => undefined as never, stop.signal, true)
        } catch {
          return // the far end closed
        }
      }
      if (r === EOF) {
        ended = true
        to.end()
        return
      }
      to.cork()
      let more: Buffer | typeof PENDING | typeof EOF = r
      let full = false
      while (more !== PENDING && more !== EOF) {
        full = !to.write(more)
        if (full) break
        more = take()
      }
      to.uncork()
      if (more === EOF) {
        ended = true
        to.end()
        return
      }
      if (full && !cut) await drained(to)
      if (cut) return
    }
  }
  void writeOut()

  return new Promise((resolve) => {
    from.on('error', () => undefined) // 'close' follows
    whenClosed(from, () => {
      closed = true
      to.destroy()
      stop.abort()
      void Promise.resolve(writing).then(() => {
        end.close()
        resolve()
      })
    })
  })
}

/**
 * Runs `then` on `socket`'s 'close', or at once if that came before anyone listened: a process the
 * supervisor started before its code had loaded may have ended with nothing written, its streams
 * closed (start-process.ts), and a relay that waited for their 'close' never ended.
 */
function whenClosed(socket: Socket, then: () => void): void {
  if (socket.closed) then()
  else socket.once('close', then)
}

/** Until `socket`'s buffered writes have gone to the kernel, or it closed; no listener stays behind. */
export function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done).off('close', done)
      resolve()
    }
    socket.on('drain', done).on('close', done)
  })
}

/**
 * `inner`, for frames whose payload starts with the u32 `stamp`: it gets the rest of each, once
 * the stamp is there and right. A frame without it calls `bad` (once) and ends the stream.
 */
function stamped(inner: FrameSink, stamp: number, bad: () => void): FrameSink {
  const head = Buffer.alloc(4)
  let have = 0
  let size = 0
  let refused = false
  return {
    start(n) {
      if (refused) return false
      if (n < 4) {
        refused = true
        bad()
        return false
      }
      size = n - 4
      have = 0
    },
    part(bytes) {
      if (refused) return
      if (have < 4) {
        const k = Math.min(4 - have, bytes.length)
        bytes.copy(head, have, 0, k)
        have += k
        if (have < 4) return
        if (head.readUInt32BE(0) !== stamp) {
          refused = true
          return bad()
        }
        inner.start(size)
        bytes = bytes.subarray(k)
        if (bytes.length === 0) return
      }
      inner.part(bytes)
    },
  }
}
