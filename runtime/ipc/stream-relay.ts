// A relay between one end of a shared-memory pipe (connection.ts) and a stream to another
// process, in the event loop of the thread that owns the stream (the supervisor's, for a spawned
// process's DATA_FD). Records cross as frames of CPython's connection framing (framing.ts). So a
// process that shares no memory with us can be the far end of a pipe whose near end is used by
// code written for threads (a spawn-context pool worker, pool/pool-process-worker.ts).
//
// It never blocks its thread: it waits on the ring with Atomics.waitAsync and on the stream with
// its events. A frame the ring has no room for pauses the stream (the kernel's buffer then
// pushes back on the writer); the relay ends once the stream has closed and every frame that
// came is in the ring, so the owner of the pipe may treat the far end as gone from then on.

import type { Socket } from 'node:net'
import { ConnectionCore, SendState } from './connection.js'
import { EOF, GetState, Ring } from './ring.js'
import { PENDING, coroBlockOn } from '../core/wait.js'
import { framed, messageReader } from './framing.js'

/** The near end a relay serves: its rings (as ConnectionCore.reduce gives them) and a word it bumps when records arrive. */
export interface RelayEnds {
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
  /** Word 0 is bumped (and notified) after records from the far end are in `tx`'s ring. */
  notify: SharedArrayBuffer
}

/** The longest frame a relayed process may send (a pool batch or result; our own child, not a peer). */
export const MAX_RELAYED_BYTES = 1 << 30

/**
 * Relays between `socket` and the pipe end `ends` until the socket closes. Resolves once every
 * frame that came is in the ring (or the near end is gone); the near end is then closed, so its
 * peer reads end-of-file. `broken` is called when the far end breaks the framing.
 */
export function relay(socket: Socket, ends: RelayEnds, broken: () => void = () => undefined): Promise<void> {
  const end = new ConnectionCore(new Ring(new Int32Array(ends.rx)), new Ring(new Int32Array(ends.tx)), true)
  const notify = new Int32Array(ends.notify)
  const bump = (): void => {
    Atomics.add(notify, 0, 1)
    Atomics.notify(notify, 0)
  }
  const stop = new AbortController()
  let closed = false

  // Far → near: frames into the ring, in order; one bump per burst.
  const inbound: Buffer[] = []
  let writing: Promise<void> | undefined
  const writeIn = async (): Promise<void> => {
    await undefined // `writing` is set before this runs on
    while (inbound.length) {
      const st = new SendState(end.tx!.i32, inbound.shift()!)
      try {
        if (end.sendAttempt(st) === PENDING) {
          socket.pause()
          bump() // the reader must hear of what is already in, to make room
          // A frame larger than the ring goes in part by part: the reader hears of each part.
          await coroBlockOn(st, () => {
            const r = end.sendAttempt(st)
            bump()
            return r
          }, Infinity, () => undefined, undefined, true)
          if (!closed) socket.resume()
        }
      } catch {
        inbound.length = 0 // the near end is gone (its reader closed it): nobody reads what is left
      }
    }
    bump()
    writing = undefined
  }
  // A frame no child of ours sends (a negative or huge length): the stream is cut, and `broken` told.
  const reader = messageReader(MAX_RELAYED_BYTES, (payload) => inbound.push(payload), () => {
    socket.destroy()
    broken()
  })
  socket.on('data', (chunk: Buffer) => {
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
        socket.end()
        return
      }
      socket.cork()
      let more: Buffer | typeof PENDING | typeof EOF = r
      let full = false
      while (more !== PENDING && more !== EOF) {
        full = !socket.write(more)
        if (full) break
        more = take()
      }
      socket.uncork()
      if (more === EOF) {
        socket.end()
        return
      }
      if (full && !closed) await drained(socket)
      if (closed) return
    }
  }
  void writeOut()

  return new Promise((resolve) => {
    socket.on('error', () => undefined) // 'close' follows
    socket.once('close', () => {
      closed = true
      stop.abort()
      void Promise.resolve(writing).then(() => {
        end.close()
        resolve()
      })
    })
  })
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
