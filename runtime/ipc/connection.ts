// Connection: one end of a pipe (Python's multiprocessing.connection.Connection). Each direction
// is a Ring (see queue.ts) whose records are messages; a socket connection's rings are pumped by
// the I/O thread, so a blocking recv() or send() on a socket is the same wait on shared words.
//
// send() waits for room, as writing to a full OS pipe does, streaming a message larger than the
// ring in parts; once the first part is in, an abort comes too late and the send completes.

import { COMMITTED, PENDING, blockOn, coroBlockOn, type Committed, type Pending, type Waiter } from '../core/wait.js'
import { CUT_OFF, EOF, GetState, Ring } from './ring.js'
import { decode, decodeFromPeer, encode, encoded } from './serialize.js'
import { pickleCodec } from './codecs.js'
import { BufferTooShort, EOFError, OSError, ValueError } from '../core/errors.js'
import { CORE, wrapCore } from '../core/transfer.js'
import { CLOSE_HANDLES, FLUSH_SOCKETS, atProcessEnd } from '../core/process-end.js'

/**
 * Buffer of each pipe direction: larger than a queue's, since pipes carry bulk data and every
 * ring-full of a large message costs a wake-up of the other side (about Linux's pipe size × 4).
 */
const PIPE_CAPACITY = 256 * 1024

/** One call to send(): the message bytes and how far they got. */
export class SendState implements Waiter {
  i32: Int32Array
  waitIndex = 0
  waitValue = 0
  waitCapMs = Infinity
  /** 0: before WLOCK; 1: holding it, header and payload going in part by part. */
  phase = 0
  sent = 0
  /** The record's length prefix, made only when the message streams in parts. */
  header: Buffer | undefined
  constructor(i32: Int32Array, public bytes: Buffer) {
    this.i32 = i32
  }
}

/** A message's bytes as a Buffer of its own (the streamed buffer already is one). */
const copyOut = (bytes: Buffer, start: number, end: number, owned: boolean): Buffer =>
  owned && start === 0 && end === bytes.length ? bytes : Buffer.from(bytes.subarray(start, end))

/** How a connection's send()/recv() encode objects: the library's format, or Python's pickle. */
export type Serializer = 'default' | 'pickle'

export function serializerOf(s: unknown): Serializer {
  if (s === undefined || s === 'default' || s === 'pickle') return s ?? 'default'
  throw new TypeError(`serializer must be 'default' or 'pickle', not ${JSON.stringify(s)}`)
}

/** A pickle read off a ring (pickle.ts's loads; its errors say what was wrong). */
const unpickle = (bytes: Buffer, start: number, end: number): unknown => pickleCodec().loads(bytes.subarray(start, end))

export class ConnectionCore implements Waiter {
  waitIndex = 0
  waitValue = 0
  waitCapMs = Infinity
  readonly i32: Int32Array
  closed = false
  private unreadable = false
  /** `counted`: this handle is already counted in the rings (a rebuilt one was counted when reduced). */
  constructor(readonly rx: Ring | null, readonly tx: Ring | null, counted = false, readonly serializer: Serializer = 'default') {
    this.i32 = (rx ?? tx)!.i32
    if (!counted) this.count()
  }

  private count(): void {
    this.rx?.addHandle(false)
    this.tx?.addHandle(true)
  }

  /** Python's Pipe(duplex): two connected ends over shared memory. */
  static pipe(duplex = true, capacity = PIPE_CAPACITY, serializer: Serializer = 'default'): [ConnectionCore, ConnectionCore] {
    const a = Ring.create(0, capacity)
    if (!duplex) return [new ConnectionCore(a, null, false, serializer), new ConnectionCore(null, a, false, serializer)]
    const b = Ring.create(0, capacity)
    return [new ConnectionCore(a, b, false, serializer), new ConnectionCore(b, a, false, serializer)]
  }
  static unconnected(): never {
    throw new TypeError('AioConnection objects come from AioPipe(), AioClient() or AioListener.accept(), not from new')
  }
  static rebuild(state: { rx: SharedArrayBuffer | null; tx: SharedArrayBuffer | null; serializer?: Serializer }): ConnectionCore {
    const ring = (sab: SharedArrayBuffer | null) => (sab ? new Ring(new Int32Array(sab)) : null)
    const core = new ConnectionCore(ring(state.rx), ring(state.tx), true, state.serializer)
    rebuiltHandles.add(core)
    return core
  }
  /**
   * The record for another thread. The handle it becomes is counted now, so that this thread may
   * close its own right after start() (Python's idiom) without closing the pipe under the child.
   */
  reduce(): { rx: SharedArrayBuffer | null; tx: SharedArrayBuffer | null; serializer?: Serializer } {
    this.checkOpen()
    this.count()
    const rings = { rx: (this.rx?.i32.buffer as SharedArrayBuffer) ?? null, tx: (this.tx?.i32.buffer as SharedArrayBuffer) ?? null }
    return this.serializer === 'default' ? rings : { ...rings, serializer: this.serializer }
  }

  private checkOpen(): void {
    if (this.closed) throw new OSError('handle is closed')
  }
  private reader(): Ring {
    this.checkOpen()
    if (!this.rx) throw new OSError('connection is write-only: this is the sending end of a one-way pipe')
    if (this.unreadable) throw new OSError('connection is unreadable: an earlier recvBytes() found a message over maxlength')
    return this.rx
  }
  /** The ring this end writes. */
  get outgoing(): Ring {
    return this.writer()
  }

  private writer(): Ring {
    this.checkOpen()
    if (!this.tx) throw new OSError('connection is read-only: this is the receiving end of a one-way pipe')
    return this.tx
  }

  get readable(): boolean {
    return this.rx !== null
  }
  get writable(): boolean {
    return this.tx !== null
  }

  // --- sending -------------------------------------------------------------------------------

  sendBegin(obj: unknown): SendState {
    const tx = this.writer()
    if (this.serializer === 'pickle') return new SendState(tx.i32, pickleCodec().dumps(obj))
    const n = encode(obj, 'obj')
    return new SendState(tx.i32, Buffer.from(encoded().subarray(0, n)))
  }

  sendBytesBegin(buf: Uint8Array, offset = 0, size?: number | null): SendState {
    const tx = this.writer()
    if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Uint8Array or Buffer')
    if (!Number.isInteger(offset) || offset < 0 || offset > buf.length) throw new ValueError('offset is negative or greater than buffer length')
    const end = size === undefined || size === null ? buf.length : offset + size
    if (!Number.isInteger(end) || end < offset || end > buf.length) throw new ValueError('buffer length < offset + size')
    // No copy: send returns (or its promise settles) only once every byte is in the ring, so the
    // caller's buffer is not read after that. Mutating it while a coro_send is pending is a bug.
    const view = Buffer.from(buf.buffer, buf.byteOffset + offset, end - offset)
    return new SendState(tx.i32, view)
  }

  sendAttempt(st: SendState): undefined | Pending {
    const tx = this.tx!
    if (tx.failed()) {
      if (st.phase === 1) tx.wlock.release()
      throw new OSError(CUT_OFF)
    }
    if (tx.readerClosed()) {
      if (st.phase === 1) tx.wlock.release()
      throw new OSError('broken pipe: the receiving end is closed')
    }
    if (st.phase === 0) {
      if (tx.lockAttempt(tx.wlock, st) === PENDING) return PENDING
      if (tx.tryWriteRecord(st.bytes, st.bytes.length)) {
        tx.wlock.release()
        this.sent(tx)
        return undefined
      }
      st.phase = 1
      st.header = Buffer.allocUnsafe(4)
      st.header.writeUInt32LE(st.bytes.length, 0)
    }
    for (;;) {
      const total = 4 + st.bytes.length
      if (st.sent >= total) break
      const [part, from] = st.sent < 4 ? [st.header!, st.sent] : [st.bytes, st.sent - 4]
      const k = tx.writeSome(part, from, part.length, st)
      if (k === PENDING) return PENDING
      st.sent += k
    }
    tx.wlock.release()
    this.sent(tx)
    return undefined
  }

  private sent(tx: Ring): void {
    if (!tx.isSocket()) return
    tx.countUnsent(1)
    socketRings.add(tx)
  }

  /** Abort of a send: nothing is in the ring before its first part; after it, the send must finish. */
  sendExpire(st: SendState): undefined | Committed {
    if (st.phase === 1 && st.sent > 0) return COMMITTED
    if (st.phase === 1) this.tx!.wlock.release()
    return undefined
  }

  // --- receiving -----------------------------------------------------------------------------

  recvBegin(): GetState {
    return new GetState(this.reader().i32)
  }

  recvAttempt(st: GetState): unknown {
    const rx = this.reader()
    return this.received(rx.takeAttempt(st, this.serializer === 'pickle' ? unpickle : rx.isSocket() ? decodeFromPeer : decode))
  }

  recvBytesAttempt(st: GetState, maxlength?: number | null): Buffer | Pending {
    try {
      return this.received(this.reader().takeAttempt(st, copyOut, maxlength ?? Infinity))
    } catch (error) {
      if (error instanceof OSError && error.message === 'bad message length') this.unreadable = true
      throw error
    }
  }

  recvBytesIntoAttempt(st: GetState, buf: Uint8Array, offset = 0): number | Pending {
    if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Uint8Array or Buffer')
    if (!Number.isInteger(offset) || offset < 0 || offset > buf.length) throw new ValueError('negative offset or offset beyond the buffer')
    const msg = this.recvBytesAttempt(st)
    if (msg === PENDING) return PENDING
    if (msg.length > buf.length - offset) {
      const error = new BufferTooShort(`buffer too short: ${buf.length - offset} bytes left, message is ${msg.length}`)
      ;(error as BufferTooShort & { data: Buffer }).data = msg
      throw error
    }
    buf.set(msg, offset)
    return msg.length
  }

  private received<R>(r: R | Pending | typeof EOF): R | Pending {
    if (r === EOF) throw new EOFError()
    return r
  }

  /**
   * Abort of a recv (it has no timeout): nothing was taken unless a large message is already
   * streaming out. The abort's reason is what the caller sees.
   */
  recvExpire(st: GetState): Committed {
    if (st.phase === 1) return COMMITTED
    throw new OSError('recv aborted')
  }

  pollAttempt(): boolean | Pending {
    return this.reader().pollAttempt(this)
  }

  /**
   * Closes this handle. The pipe's end closes with its last handle, as an fd's does with its last
   * dup: the peer's recv() then throws EOFError once drained, and its send() throws OSError.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    rebuiltHandles.delete(this)
    this.tx?.dropHandle(true)
    this.rx?.dropHandle(false)
  }

  describe(): string {
    const dir = this.rx && this.tx ? 'duplex' : this.rx ? 'read-only' : 'write-only'
    return `${dir}${this.serializer === 'pickle' ? ', pickle' : ''}${this.closed ? ', closed' : ''}`
  }
}

/** Connection handles that arrived in this thread: closed when its process ends, as a process's fds are. */
const rebuiltHandles = new Set<ConnectionCore>()
atProcessEnd(CLOSE_HANDLES, () => {
  for (const core of rebuiltHandles) core.close()
})

/**
 * Blocks until every message sent on `conn` is with the kernel (at most `capMs`): then it reaches
 * the peer even if this process is killed next.
 */
export function flushSync(conn: Connection, capMs = 10_000): void {
  const core = (conn as unknown as { [CORE]: ConnectionCore })[CORE]
  const ring = core.writable ? core.outgoing : undefined
  if (!ring?.isSocket()) return
  const w: Waiter = { i32: ring.i32, waitIndex: 0, waitValue: 0 }
  blockOn(w, () => ring.sentAttempt(w), performance.now() + capMs, () => undefined)
}

/** Outgoing socket rings this thread sent on. */
const socketRings = new Set<Ring>()

/**
 * At the end of its process, this thread waits (at most SOCKET_FLUSH_CAP_MS) until every message
 * it sent on a socket is with the kernel: a process ends only then, as a Python process's send()
 * has returned only once it was written.
 */
const SOCKET_FLUSH_CAP_MS = 30_000
atProcessEnd(FLUSH_SOCKETS, async () => {
  const deadline = performance.now() + SOCKET_FLUSH_CAP_MS
  for (const ring of socketRings) {
    const w: Waiter = { i32: ring.i32, waitIndex: 0, waitValue: 0 }
    await coroBlockOn(w, () => ring.sentAttempt(w), deadline, () => undefined, undefined)
  }
})

/**
 * The public connection class (AioConnection, generated over ConnectionCore) as code in runtime/
 * holds it: wrapCore() makes one, and the runtime never imports generated/.
 */
export interface Connection {
  send(obj: unknown): void
  sendBytes(buf: Uint8Array): void
  recv(): unknown
  poll(timeout?: number | null): boolean
  close(): void
}

export interface PipeOptions {
  /** How send()/recv() encode objects: 'default', or 'pickle' (Python's format; it carries data only, no shared objects). */
  serializer?: Serializer
}

/** Python's `Pipe(duplex = true)`: `[conn1, conn2]`; with duplex false, conn1 only receives and conn2 only sends. */
export function pipeEnds<C>(duplex = true, options: PipeOptions = {}): [C, C] {
  if (typeof duplex !== 'boolean') throw new TypeError('duplex must be a boolean')
  const [a, b] = ConnectionCore.pipe(duplex, PIPE_CAPACITY, serializerOf(options?.serializer))
  return [wrapCore<C>(a), wrapCore<C>(b)]
}

