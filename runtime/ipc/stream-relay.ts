// A relay between one end of a shared-memory pipe (connection.ts) and a stream to another
// process, in the event loop of the thread that owns the stream (the supervisor's, for a spawned
// process's DATA_FD). Records cross as frames: a u32 little-endian length, then the bytes. So a
// process that shares no memory with us can be the far end of a pipe whose near end is used by
// code written for threads (a spawn-context pool worker, pool/pool-process-worker.ts).
//
// It never blocks its thread: it waits on the ring with Atomics.waitAsync and on the stream with
// its events. A frame the ring has no room for pauses the stream (the kernel's buffer then
// pushes back on the writer); the relay ends once the stream has closed and every frame that
// came is in the ring, so the owner of the pipe may treat the far end as gone from then on.

import type { Socket } from 'node:net'
import { ConnectionCore, SendState } from './connection.js'
import { EOF, GetState, Ring } from './queue.js'
import { PENDING, coroBlockOn } from '../core/wait.js'

/** The near end a relay serves: its rings (as ConnectionCore.reduce gives them) and a word it bumps when records arrive. */
export interface RelayEnds {
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
  /** Word 0 is bumped (and notified) after records from the far end are in `tx`'s ring. */
  notify: SharedArrayBuffer
}

/** Frames longer than this are a broken peer, not data (a pool batch or result is far smaller). */
const MAX_FRAME = 1 << 30

/** `payload` as one frame. */
export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length)
  out.writeUInt32LE(payload.length, 0)
  out.set(payload, 4)
  return out
}

/** Cuts a byte stream into frames, calling `onFrame` with each payload (a copy it may keep). */
export class FrameReader {
  private pending: Buffer | undefined

  constructor(private readonly onFrame: (payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk
    let at = 0
    while (buf.length - at >= 4) {
      const n = buf.readUInt32LE(at)
      if (n > MAX_FRAME) throw new RangeError(`a frame of ${n} bytes: the peer is broken`)
      if (buf.length - at - 4 < n) break
      this.onFrame(Buffer.from(buf.subarray(at + 4, at + 4 + n)))
      at += 4 + n
    }
    this.pending = at === buf.length ? undefined : buf.subarray(at)
    buf = undefined as never
  }
}

/**
 * Relays between `socket` and the pipe end `ends` until the socket closes. Resolves once every
 * frame that came is in the ring (or the near end is gone); the near end is then closed, so its
 * peer reads end-of-file.
 */
export function relay(socket: Socket, ends: RelayEnds): Promise<void> {
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
  const reader = new FrameReader((payload) => inbound.push(payload))
  socket.on('data', (chunk: Buffer) => {
    try {
      reader.push(chunk)
    } catch {
      socket.destroy()
      return
    }
    writing ??= writeIn()
  })

  // Near → far: every record the ring has, as frames, in one write.
  const st = new GetState(end.rx!.i32)
  const take = (): Buffer | typeof PENDING | typeof EOF => end.rx!.takeAttempt(st, (bytes, from, to) => frame(bytes.subarray(from, to)))
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
