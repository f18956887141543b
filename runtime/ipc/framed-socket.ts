// One socket speaking CPython's multiprocessing.connection: the authkey handshake of auth.ts, as
// server or client, then frames of framing.ts both ways. The I/O thread (AioListener, AioClient),
// the manager server and the proxies' awaitable connection all use it, so the handshake, the frame
// limit and the ways a connection breaks are written once.
//
// How input ends, reported once by `ended`:
//   undefined                       EOF at a frame boundary after the handshake
//   EOFError                        EOF at a frame boundary during the handshake
//   OSError(CUT_OFF)                a bad frame (negative, over the limit), or EOF inside a frame
//   OSError('bad message length')   a handshake frame over HANDSHAKE_MAX (CPython's recv_bytes(256))
//   AuthenticationError             the handshake failed (after #FAILURE# was sent, when we judged)
//   the socket's own error          a reset, a refused connect, ...
// A failed handshake ends the socket gently, so that the peer reads our #FAILURE#; anything else
// destroys it.
import { tryReadSync } from '../core/nonblocking.js'
import type { Socket } from 'node:net'
import { EOFError, OSError } from '../core/errors.js'
import { lookWorthIt, noteLook } from '../core/idle-core.js'
import { HANDSHAKE_MAX, clientHandshake, handshakeDriver, serverHandshake } from './auth.js'
import { FrameReader, MAX_MESSAGE_BYTES, frameHeader, framed, wholeMessages, type FrameSink } from './framing.js'
import { CUT_OFF } from './ring.js'

/** Payloads up to this size go out with their header in one write, as CPython does. */
const ONE_WRITE_BYTES = 16384
/** How long watchFor() looks for an answer before it leaves it to the event loop, in ms (while looks are on: idle-core.ts LOOKS). */
const WATCH_MS = 0.3
/** How long one of watchFor()'s turns reads in a tight loop before it lets the event loop run, in ms. */
const TURN_MS = 0.03
/** readNow()'s buffer: what it reads is copied out at once. */
const scratch = Buffer.allocUnsafe(64 * 1024)

/**
 * Reads what has come on `socket` now, straight from its fd, without waiting for the event loop to
 * be woken for it (that wake-up costs tens of µs after a sleep; a peer on this machine often
 * answers sooner), and hands it to `input`, which must take it as the socket's 'data' would: true
 * when bytes were read. The loop's own read then finds nothing, or the rest. False when nothing
 * was there, input is over (the loop reads the 0 again and reports it), the read failed (the
 * socket is destroyed with that error, as its own read would), or the socket has no fd here (its
 * input comes through the loop as usual).
 */
export function readNow(socket: Socket, input: (chunk: Buffer) => void): boolean {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) return false
  // Bytes the loop read and the stream holds are not handed on yet: newer ones must not pass them.
  if (socket.readableLength > 0 || socket.readableFlowing !== true) return false
  let n: number
  try {
    n = tryReadSync(fd, scratch, 0, scratch.length)
  } catch (error) {
    // Reported as the loop's own read would: the kernel hands a socket's error (ECONNRESET...) to
    // one read only, so the loop's would see a clean end.
    const { errno, code } = error as NodeJS.ErrnoException
    socket.destroy(Object.assign(new Error(`read ${code}`), { errno, code, syscall: 'read' }))
    return false
  }
  // -1: nothing yet (EAGAIN).
  if (n <= 0) return false
  input(Buffer.from(scratch.subarray(0, n)))
  return true
}

/**
 * Calls `read` on turns of the event loop for up to `ms`, until `answered()`, then leaves input
 * to the loop (and calls `ended`): for a request whose answer usually comes within microseconds
 * (and for a server, the next request of a client in a loop). Each turn reads in a tight loop for
 * up to TURN_MS (a turn of the event loop costs a few µs of its own, a poll of every handle; the
 * tight loop took awaited proxy pairs from ~18.7k to ~21.9k a second here, lock pairs from ~19.1k
 * to ~25.7k), and the loop runs other work between the turns. Not at all (false) while looking
 * does not pay (idle-core.ts), or with the spin off. `until`, when given, is the end instead (a
 * time a later call may move).
 */
export function watchFor(read: () => boolean, answered: () => boolean, ms = WATCH_MS, ended?: () => void, until?: () => number): boolean {
  // Only while it pays: else the turns take the core the peer needs to answer (idle-core.ts).
  if (ms <= 0 || !lookWorthIt()) return false
  const start = performance.now()
  const end = until ?? (() => start + ms)
  const turn = (): void => {
    let got = false
    let found = answered() || ((got = read()), answered())
    let now = performance.now()
    // Until something comes: what came may be an answer whose caller must run (a microtask,
    // after this turn) before the next answer matters (several calls in flight lost ~15% to a
    // loop that went on for the last one).
    const spinUntil = Math.min(now + TURN_MS, end())
    while (!found && !got && now < spinUntil) {
      got = read()
      found = answered()
      now = performance.now()
    }
    if (!found && now < end()) return void setImmediate(turn)
    noteLook(found ? (now - start) * 1000 : null)
    ended?.()
  }
  setImmediate(turn)
  return true
}


/** How long a peer has for the authkey handshake at a server (a listener's, a manager's) unless told otherwise. */
export const HANDSHAKE_TIMEOUT_MS = 20_000
/** How long a peer that failed the handshake has to read our verdict before its socket is dropped. */
const VERDICT_GRACE_MS = 5_000

export interface FramedSocketOptions {
  /** 'server' challenges first (Listener.accept), 'client' answers first (Client). */
  role: 'server' | 'client'
  /** No key, no handshake, as in Python. */
  authkey: Uint8Array | null
  /**
   * Past this many ms without a finished handshake the connection is dropped (OSError): a server's
   * guard against peers that connect and say nothing, each holding an fd for ever.
   */
  handshakeMs?: number
  /** The longest frame the peer may send (default MAX_MESSAGE_BYTES): a peer never sizes our allocations beyond it. */
  maxMessageBytes?: number
  /** Each whole message after the handshake (the bytes are the caller's to keep); or `frames`. */
  message?(bytes: Buffer): void
  /** Each frame after the handshake, its payload in parts as it arrives (for streaming into a ring). */
  frames?: FrameSink
  /** The handshake passed (at once when there is no key): frames flow from now on. */
  ready?(): void
  /** Input ended, once; see the table at the top. */
  ended(error?: Error): void
  /** The socket closed both ways. */
  closed?(): void
  /**
   * While frames handed on are still being stored (a ring that is full), a promise of that: the
   * socket stops reading until it settles, and EOF is reported after it.
   */
  backlog?(): Promise<void> | undefined
}

export class FramedSocket {
  private shake: ((input?: Buffer) => boolean) | undefined
  private readonly reader: FrameReader
  /** Input is over (ended reported): nothing more is read or handed on. */
  private done = false
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined
  /** The watch for input running on this socket, if any (see watchFor). */
  private watch: { end: number; answered: () => boolean } | undefined

  constructor(
    readonly socket: Socket,
    private readonly o: FramedSocketOptions,
  ) {
    const sink = o.frames ?? wholeMessages(o.message!)
    const handshakeSink = wholeMessages((bytes) => this.handshakeFrame(bytes))
    this.reader = new FrameReader(
      o.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      (size) => {
        // A handshake that failed inside this chunk: what the peer sent after it is not read.
        if (this.done) return false
        if (!this.shake) return sink.start(size)
        if (size > HANDSHAKE_MAX) return this.fail(new OSError('bad message length'))
        handshakeSink.start(size)
      },
      (bytes) => {
        if (!this.done) (this.shake ? handshakeSink : sink).part(bytes)
      },
      () => this.fail(new OSError(CUT_OFF)),
    )
    if (o.authkey) {
      const gen = o.role === 'server' ? serverHandshake(o.authkey) : clientHandshake(o.authkey)
      this.shake = handshakeDriver(gen, (bytes) => void socket.write(framed(bytes)))
      if (o.handshakeMs !== undefined) {
        this.handshakeTimer = setTimeout(() => this.fail(new OSError(`the peer did not finish the authkey handshake within ${o.handshakeMs} ms`)), o.handshakeMs)
        this.handshakeTimer.unref()
      }
    }
    socket.on('data', (chunk: Buffer) => this.input(chunk))
    socket.on('end', () => {
      const inFrame = this.reader.inFrame
      const report = (): void => {
        if (inFrame) this.fail(new OSError(CUT_OFF))
        else if (this.shake) this.fail(new EOFError())
        else this.finish()
      }
      const pending = o.backlog?.()
      if (pending) void pending.then(report)
      else report()
    })
    socket.on('error', (error) => this.fail(error))
    socket.on('close', () => o.closed?.())
    socket.resume() // a listener's sockets may be paused on connect (net.Server pauseOnConnect)
    // Not before the constructor returned: a `ready` without a handshake may use this object.
    if (socket.connecting) socket.once('connect', () => this.begin())
    else queueMicrotask(() => this.begin())
  }

  private input(chunk: Buffer): void {
    if (this.done || !this.reader.push(chunk)) return
    const pending = this.o.backlog?.()
    if (!pending) return
    this.socket.pause()
    void pending.then(() => {
      if (!this.done) this.socket.resume()
    })
  }

  /**
   * Reads what has come on the socket now, without waiting for the event loop to be woken for it
   * (the module's readNow), handed on as the 'data' event would be.
   */
  readNow(): boolean {
    if (this.done) return false
    return readNow(this.socket, (chunk) => this.input(chunk))
  }

  /**
   * Looks for input on turns of the event loop until `answered()` (the module's watchFor). One
   * watch per socket: a call while one runs extends it and gives it the new `answered`, instead of
   * a second loop reading the same socket (a server answering 200 pipelined calls started 200).
   */
  watchFor(answered: () => boolean, ms = WATCH_MS): void {
    const end = performance.now() + ms
    if (this.watch) {
      this.watch.end = Math.max(this.watch.end, end)
      this.watch.answered = answered
      return
    }
    const watch = { end, answered }
    // The loop's bound is the watch's end, which later calls may move.
    const found = (): boolean => this.done || watch.answered()
    if (watchFor(() => this.readNow(), found, ms, () => (this.watch = undefined), () => watch.end)) this.watch = watch
  }

  /** Sends one message; false when the socket's buffer is full (see drain). `owned`: the payload is not reused by the caller, so a large one is written without a copy. */
  send(payload: Uint8Array, owned = false, written?: () => void): boolean {
    if (owned && payload.length > ONE_WRITE_BYTES) {
      this.socket.write(frameHeader(payload.length))
      return this.socket.write(payload, written)
    }
    return this.socket.write(framed(payload), written)
  }

  /** Settles once the socket's buffer drained (at once if it has already), or the socket closed. */
  drain(): Promise<void> {
    // A caller may ask later than the send that filled the buffer: its 'drain' may be past.
    if (this.socket.destroyed || !this.socket.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done)
        this.socket.off('close', done)
        resolve()
      }
      this.socket.once('drain', done)
      this.socket.once('close', done)
    })
  }

  /**
   * Drops the connection now, whatever it was doing (its user went away, the server stops, a
   * message made no sense, a handshake took too long): nothing more is read, ended(error).
   */
  abort(error: Error): void {
    this.fail(error)
  }

  private begin(): void {
    if (this.done) return
    if (this.shake) this.drive()
    else this.o.ready?.()
  }

  private handshakeFrame(bytes: Buffer): void {
    this.drive(bytes)
  }

  private drive(input?: Buffer): void {
    if (this.done) return
    let passed: boolean
    try {
      passed = this.shake!(input)
    } catch (error) {
      this.fail(error as Error, true)
      return
    }
    if (!passed) return
    this.shake = undefined
    clearTimeout(this.handshakeTimer)
    this.o.ready?.()
  }

  private finish(): void {
    if (this.done) return
    this.done = true
    this.o.ended()
  }

  /** Ends input with `error`; returns false for FrameReader (the rest of the chunk is not read). */
  private fail(error: Error, gently = false): false {
    if (this.done) return false
    this.done = true
    clearTimeout(this.handshakeTimer)
    if (gently) {
      this.socket.end()
      setTimeout(() => this.socket.destroy(), VERDICT_GRACE_MS).unref()
    } else this.socket.destroy()
    this.o.ended(error)
    return false
  }
}
