// The fast lane for blocking proxy calls of a process's main thread to a manager server on the
// same machine (an AioManager's, or the spawn context's broker): a pair of named pipes (FIFOs) that the client reads and writes with blocking system
// calls (fs.readSync/fs.writeSync), so a call needs no other thread of the client: a request is
// one write, its answer one read, as in Python's Connection. The server reads and writes its ends
// in its event loop (manager-server.ts). Frames are the connections' (framing.ts).
//
// The FIFOs live in a private folder of the server (mode 0700) and are unlinked once both ends
// are open. The client's read end sees end-of-file when the server process is gone; the server
// learns that the client is gone from the client's socket connection, to which this lane belongs.
//
// The same class reads and writes a socket that the I/O thread connected and handed over
// (SyncPipe.socket: a Python manager's connection). A socket's fd does not block: a read that
// finds nothing spins a moment (an answer usually comes within tens of µs), then sleeps in
// growing steps of at most POLL_CAP_MS, so a call that waits long costs a few wake-ups a second.

import { closeSync, constants, openSync, readSync, writeSync, writevSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { EOFError, OSError } from '../core/errors.js'
import { MAX_MESSAGE_BYTES, frameHeader } from '../ipc/framing.js'
import { HANDSHAKE_MAX, clientHandshake, handshakeDriver } from '../ipc/auth.js'
import { DetachedConnectState, closeDetached } from '../ipc/sockets.js'
import { blockOn, coroBlockOn } from '../core/wait.js'
import { LOOKS, lookFor } from '../core/idle-core.js'
import { tryReadSync, tryWriteSync, tryWritevSync } from '../core/nonblocking.js'

/** Reads of a socket that found nothing, retried at once before the thread sleeps. */
const SPIN_READS = 40
/** The longest sleep between two reads of a socket that is waited on; after a second of waiting, POLL_CAP_LONG_MS. */
const POLL_CAP_MS = 1
const POLL_CAP_LONG_MS = 5
const nap = new Int32Array(new SharedArrayBuffer(4))

/** Retries `io` on a non-blocking fd (-1: it would block) until it does something: spins, then sleeps in growing steps. */
function polled(io: () => number): number {
  let delay = 0
  const start = performance.now()
  for (let tries = 0; ; tries++) {
    const n = io()
    if (n >= 0) return n
    if (tries < SPIN_READS) continue
    const cap = performance.now() - start > 1000 ? POLL_CAP_LONG_MS : POLL_CAP_MS
    delay = Math.min(cap, delay === 0 ? 0.02 : delay * 2)
    Atomics.wait(nap, 0, 0, delay)
  }
}

/**
 * A system call's failure (ECONNRESET, EPIPE...) as the library's OSError, its code kept on the
 * cause, as the awaitable path reports it: Node's raw error is no class of the library's.
 */
function systemError(error: unknown): unknown {
  const e = error as NodeJS.ErrnoException
  return typeof e?.code === 'string' && !(e instanceof OSError) ? new OSError(`the connection to the manager failed: ${e.message}`, { cause: e }) : e
}

/** How long a lane's blocking read spins before it sleeps, in ms (while looks are on: idle-core.ts LOOKS). */
const LANE_SPIN_MS = 0.1

/** Bytes read ahead: an answer and its header usually come in one read. */
const READ_AHEAD = 64 * 1024

export class SyncPipe {
  private readonly buf = Buffer.allocUnsafe(READ_AHEAD)
  /** Bytes read and not yet taken: buf[start, end). */
  private start = 0
  private end = 0
  private closed = false
  /** A lane's answer FIFO opened a second time, non-blocking: read in a spin before the blocking read sleeps. */
  private spinIn = -1

  private constructor(
    private readonly out: number,
    private readonly in_: number,
    /** A socket (one fd both ways, non-blocking): true for one the I/O thread handed over (it closes it), or this thread's own. */
    private readonly socketFd: boolean | Socket = false,
  ) {}

  /**
   * Connects to the Unix socket at `path` from this thread, with no other thread: connecting a
   * Unix socket completes in the system call, which libuv makes inside net.connect(), so the fd
   * can be written and read at once, with the authkey handshake run here; the event loop reads it
   * only between calls, for its end (`ended`). Null when nothing accepts there: the caller
   * connects through the I/O thread, whose error says why. Throws when no socket can be made (no
   * fd left). The socket is a handle of this thread's loop, closed with the thread however it ends.
   */
  static here(path: string, authkey: Uint8Array | null, ended?: (pipe: SyncPipe) => void): SyncPipe | null {
    const socket = connect(path)
    socket.pause()
    socket.unref()
    socket.on('error', () => {}) // a failed connect shows in the first read below; its event comes later
    // No socket could be made (EMFILE): Node destroyed it at once, with the error; the I/O thread
    // would fare no better, and could not even start.
    if (socket.destroyed) throw socket.errored ?? new OSError(`cannot connect to ${path}`)
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
    if (typeof fd !== 'number' || fd < 0) {
      socket.destroy()
      return null
    }
    const pipe = new SyncPipe(fd, fd, socket)
    // An unconnected socket fails this read (EINVAL); a connected one has nothing yet, or the
    // server's challenge (kept for the handshake), or its end.
    let reachable: boolean
    try {
      reachable = !pipe.poll() || pipe.end > 0
    } catch {
      reachable = false
    }
    if (!reachable) {
      pipe.close()
      return null
    }
    if (authkey) {
      try {
        const feed = handshakeDriver(clientHandshake(authkey), (bytes) => pipe.sendBytes(bytes))
        for (let done = feed(); !done; ) done = feed(pipe.recv(HANDSHAKE_MAX))
      } catch (error) {
        pipe.close()
        throw error
      }
    }
    // Between calls the event loop reads it, to see the server go (its end, a reset): nothing
    // else comes then, as every answer is read within its call (the loop does not run during
    // one). Unasked-for bytes are a broken connection too.
    if (ended) {
      const end = (): void => ended(pipe)
      socket.on('data', end).on('end', end).on('close', end).on('error', end)
      socket.resume()
    }
    return pipe
  }

  /**
   * Connects to `address` (the I/O thread connects and runs the handshake) and takes the socket
   * over; null when that took more than `timeoutMs` (the attempt is withdrawn).
   */
  static socket(address: string | [string, number], authkey: Uint8Array | null, timeoutMs = Infinity): SyncPipe | null {
    const st = new DetachedConnectState(address, { authkey })
    const fd = blockOn<number | null>(st, () => st.attempt(), performance.now() + timeoutMs, () => st.expire() ?? null, true)
    return fd === null ? null : new SyncPipe(fd, fd, true)
  }

  /** socket(), awaited: the event loop runs while the I/O thread connects. */
  static async coroSocket(address: string | [string, number], authkey: Uint8Array | null, timeoutMs = Infinity): Promise<SyncPipe | null> {
    const st = new DetachedConnectState(address, { authkey })
    const fd = await coroBlockOn<number | null>(st, () => st.attempt(), performance.now() + timeoutMs, () => st.expire() ?? null, undefined, true)
    return fd === null ? null : new SyncPipe(fd, fd, true)
  }

  /**
   * Opens the client's ends of the FIFOs the server made (`request` it reads, `answer` it writes):
   * neither open waits, since the server holds its ends open already.
   */
  static open(request: string, answer: string): SyncPipe {
    const in_ = openSync(answer, constants.O_RDONLY)
    let pipe: SyncPipe
    try {
      pipe = new SyncPipe(openSync(request, constants.O_WRONLY), in_)
    } catch (error) {
      closeSync(in_)
      throw error
    }
    // The spin's fd is a nicety: without it (no fd left: EMFILE) the lane reads as before.
    if (LOOKS) {
      try {
        pipe.spinIn = openSync(answer, constants.O_RDONLY | constants.O_NONBLOCK)
      } catch {
        // no spin on this lane
      }
    }
    return pipe
  }

  /** Writes one frame (connection framing, framing.ts), all of it, without copying the payload. */
  sendBytes(payload: Uint8Array): void {
    const head = frameHeader(payload.length)
    let n: number
    try {
      n = this.socketFd ? polled(() => tryWritevSync(this.out, [head, payload])) : writevSync(this.out, [head, payload])
    } catch (error) {
      throw systemError(error)
    }
    // A large frame may go in parts (the server reads as it comes).
    for (let at = n - head.length; at < payload.length; at += n) {
      if (at < 0) {
        n = this.write(head, head.length + at, -at)
        continue
      }
      n = this.write(payload, at, payload.length - at)
    }
  }

  /**
   * Whether input has come (a handed-over socket only): reads what is there without waiting. A
   * caller that must not block polls this, then takes the frame with recv(), which waits at most
   * for the rest of a frame already begun. True at end of input too (recv() then says so).
   */
  poll(): boolean {
    if (this.end > this.start) return true
    this.start = this.end = 0
    let n: number
    try {
      n = tryReadSync(this.in_, this.buf, 0, READ_AHEAD)
    } catch (error) {
      throw systemError(error)
    }
    if (n < 0) return false
    this.end = n
    return true
  }

  /** Reads one frame, blocking the thread until it is whole; EOFError once the server is gone. */
  recv(max = MAX_MESSAGE_BYTES): Buffer {
    this.fill(4)
    let size = this.buf.readInt32BE(this.start)
    this.start += 4
    if (size === -1) {
      this.fill(8)
      size = Number(this.buf.readBigUInt64BE(this.start))
      this.start += 8
    }
    if (size < 0 || size > max) throw new OSError(max < MAX_MESSAGE_BYTES ? 'bad message length' : `a frame of ${size} bytes from the manager: the ${this.socketFd ? 'connection' : 'lane'} is broken`)
    if (size <= this.end - this.start || size <= READ_AHEAD) {
      this.fill(size)
      const out = Buffer.from(this.buf.subarray(this.start, this.start + size))
      this.start += size
      return out
    }
    // Larger than the read-ahead: what is buffered, then the rest straight into the payload.
    const out = Buffer.allocUnsafe(size)
    let at = this.buf.copy(out, 0, this.start, this.end)
    this.start = this.end = 0
    while (at < size) at += this.read(out, at, size - at)
    return out
  }

  /** Until `n` (≤ READ_AHEAD) bytes are buffered from `start`. */
  private fill(n: number): void {
    if (this.end - this.start >= n) return
    if (this.start + n > READ_AHEAD) {
      this.buf.copy(this.buf, 0, this.start, this.end)
      this.end -= this.start
      this.start = 0
    }
    while (this.end - this.start < n) this.end += this.read(this.buf, this.end, READ_AHEAD - this.end)
  }

  private write(from: Uint8Array, at: number, length: number): number {
    try {
      return this.socketFd ? polled(() => tryWriteSync(this.out, from, at, length)) : writeSync(this.out, from, at, length)
    } catch (error) {
      throw systemError(error)
    }
  }

  private read(into: Buffer, at: number, max: number): number {
    let n: number
    try {
      n = this.socketFd ? polled(() => tryReadSync(this.in_, into, at, max)) : this.spun(into, at, max) ?? readSync(this.in_, into, at, max, null)
    } catch (error) {
      throw systemError(error)
    }
    if (n === 0) throw new EOFError('the manager closed the connection')
    return n
  }

  /**
   * A lane's answer read in a spin of up to LANE_SPIN_MS: the server answers a call within tens
   * of µs, sooner than this thread would be woken from a blocking read (40–55 µs after a sleep
   * here). Undefined when nothing came (the blocking read follows), or when no core is free
   * (idle-core.ts); 0 at end of input.
   */
  private spun(into: Buffer, at: number, max: number): number | undefined {
    // Only while it pays: else the spin takes the core the server needs to answer (idle-core.ts).
    if (this.spinIn < 0) return undefined
    let n = -1
    return lookFor(() => (n = tryReadSync(this.spinIn, into, at, max)) >= 0, LANE_SPIN_MS) ? n : undefined
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.socketFd === true) return closeDetached(this.out)
    if (this.socketFd) return void this.socketFd.destroy()
    closeSync(this.out)
    closeSync(this.in_)
    if (this.spinIn >= 0) closeSync(this.spinIn)
  }
}
