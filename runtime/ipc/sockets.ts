// Listener and Client over Unix sockets and TCP. Sockets live in the I/O thread (io-thread.ts),
// which also runs their authkey handshake; here, each operation is an attempt on shared words like
// every other wait: accept() offers a fresh pair of rings and waits until the I/O thread has
// attached a socket to them that passed the handshake (or says why none did).
import { PENDING, park, type Pending, type Waiter } from '../core/wait.js'
import { lookFor } from '../core/idle-core.js'
import { ConnectionCore, serializerOf, type Serializer } from './connection.js'
import { Ring } from './ring.js'
import { AuthenticationError, EOFError, OSError, ValueError } from '../core/errors.js'
import { wrapCore } from '../core/transfer.js'
import { MAX_MESSAGE_BYTES } from './framing.js'
import { STATUS, type Address, type IoMessage } from './io-protocol.js'
import { ioThread } from './io-client.js'

export type { Address } from './io-protocol.js'


export interface SocketOptions {
  /** 'AF_INET' or 'AF_UNIX'; inferred from the address when omitted. */
  family?: 'AF_INET' | 'AF_UNIX'
  /** The shared secret for the handshake; none means no authentication, as in Python. */
  authkey?: Uint8Array | string | null
  /** The longest message a peer may send, in bytes (default 64 MiB); a longer frame cuts it off. */
  maxMessageSize?: number
  /**
   * How send()/recv() encode objects: 'default' (the library's format, which carries shared
   * objects and proxies) or 'pickle' (Python's, protocol 4, to talk to CPython's Connection).
   */
  serializer?: Serializer
}

export interface ListenerOptions extends SocketOptions {
  backlog?: number
}

const ERROR_CLASSES = [OSError, AuthenticationError, EOFError]
const STATUS_BYTES = 16 + 512

function statusText(status: Int32Array): string {
  return Buffer.from(status.buffer as SharedArrayBuffer).subarray(16, 16 + status[2]).toString()
}

/** The most bytes a Unix socket's path may have (Linux's sun_path, less its final NUL). */
export const UNIX_PATH_MAX = 107

/**
 * A Unix socket's path, refused when it is too long, as Python refuses it ("AF_UNIX path too
 * long"): Node 20 cuts a longer one without a word, and the socket then lands elsewhere or fails
 * with a misleading EADDRINUSE.
 */
export function checkUnixPath(path: string): string {
  const n = Buffer.byteLength(path)
  if (n > UNIX_PATH_MAX) throw new OSError(`AF_UNIX path too long: ${JSON.stringify(path)} has ${n} bytes, over the ${UNIX_PATH_MAX} a Unix socket's path may have`)
  return path
}

function checkAddress(address: unknown, family?: string): Address {
  if (typeof address === 'string') {
    if (family === 'AF_INET') throw new ValueError(`family AF_INET needs an address ['host', port], not a path`)
    return checkUnixPath(address)
  }
  if (Array.isArray(address) && address.length === 2 && typeof address[0] === 'string' && Number.isInteger(address[1]) && address[1] >= 0 && address[1] < 65536) {
    if (family === 'AF_UNIX') throw new ValueError('family AF_UNIX needs a path address')
    return [address[0], address[1]]
  }
  throw new TypeError(`address must be ['host', port] for TCP or a path for a Unix socket, not ${JSON.stringify(address)}`)
}

function keyOf(authkey: SocketOptions['authkey']): Buffer | null {
  if (authkey === undefined || authkey === null) return null
  if (typeof authkey === 'string') return Buffer.from(authkey)
  if (authkey instanceof Uint8Array) return Buffer.from(authkey)
  throw new TypeError('authkey must be a Uint8Array or a string')
}

function maxOf(o: SocketOptions): number {
  const m = o.maxMessageSize ?? MAX_MESSAGE_BYTES
  // Ring records carry a 32-bit length: the cap cannot go past it.
  if (!Number.isInteger(m) || m < 0 || m > 0xffffffff) throw new TypeError(`maxMessageSize must be an integer from 0 to 4294967295, not ${m}`)
  return m
}

/** One connection being set up: waiting for the I/O thread to connect it and run its handshake. */
export class ConnectState implements Waiter {
  i32: Int32Array
  waitIndex = 0
  waitValue = 0
  waitCapMs = Infinity
  readonly status = new Int32Array(new SharedArrayBuffer(STATUS_BYTES))
  readonly conn: ConnectionCore
  peer = ''
  constructor(serializer: Serializer) {
    const rx = Ring.create(0)
    const tx = Ring.create(0)
    tx.markSocket()
    this.conn = new ConnectionCore(rx, tx, false, serializer)
    this.i32 = this.status
  }

  rings(): { rx: SharedArrayBuffer; tx: SharedArrayBuffer } {
    return { rx: this.conn.rx!.i32.buffer as SharedArrayBuffer, tx: this.conn.tx!.i32.buffer as SharedArrayBuffer }
  }

  attempt(): ConnectionCore | Pending {
    const s = Atomics.load(this.status, 0)
    if (s === STATUS.WAITING || s === STATUS.CONNECTED_PENDING) return park(this, this.status, 0, s)
    if (s === STATUS.ERROR) throw new (ERROR_CLASSES[this.status[3]] ?? OSError)(statusText(this.status))
    if (s === STATUS.WITHDRAWN) throw new OSError('the operation was withdrawn')
    this.peer = statusText(this.status)
    return this.conn
  }

  /** Timeout or abort: withdraw if the handshake is not over yet (the I/O thread drops the socket); else the connection is dropped. */
  expire(): undefined {
    if (!withdraw(this.status)) this.conn.close()
    return undefined
  }
}

/** Withdraws an operation whose handshake is not over (the I/O thread drops its socket); false when it is over. */
function withdraw(status: Int32Array): boolean {
  for (let s = Atomics.load(status, 0); s === STATUS.WAITING || s === STATUS.CONNECTED_PENDING; ) {
    const was = Atomics.compareExchange(status, 0, s, STATUS.WITHDRAWN)
    if (was === s) {
      Atomics.notify(status, 0) // the I/O thread watches a handshake's status for this
      return true
    }
    s = was
  }
  return false
}

/**
 * A connection whose socket its caller reads and writes itself, with system calls on the fd (see
 * manager/sync-pipe.ts): the I/O thread connects it and runs the handshake, then stops reading it.
 * For request/answer protocols, where the I/O thread's two hops per message cost more than the
 * peer's own work (a Python manager's calls).
 */
export class DetachedConnectState implements Waiter {
  readonly status = new Int32Array(new SharedArrayBuffer(STATUS_BYTES))
  i32 = this.status
  waitIndex = 0
  waitValue = 0
  waitCapMs = Infinity

  constructor(address: unknown, options: SocketOptions = {}) {
    ioThread().postMessage({ op: 'connectDetached', address: checkAddress(address, options.family), status: this.status.buffer as SharedArrayBuffer, authkey: keyOf(options.authkey) } satisfies IoMessage)
  }

  /** The socket's fd, once connected and past the handshake. */
  attempt(): number | Pending {
    const s = Atomics.load(this.status, 0)
    if (s === STATUS.WAITING || s === STATUS.CONNECTED_PENDING) return park(this, this.status, 0, s)
    if (s === STATUS.ERROR) throw new (ERROR_CLASSES[this.status[3]] ?? OSError)(statusText(this.status))
    if (s === STATUS.WITHDRAWN) throw new OSError('the operation was withdrawn')
    return this.status[1]
  }

  expire(): undefined {
    if (!withdraw(this.status)) closeDetached(this.status[1])
    return undefined
  }
}

/** Closes a socket of DetachedConnectState (the I/O thread holds it): its fd is not to be used after. */
export function closeDetached(fd: number): void {
  ioThread().postMessage({ op: 'closeDetached', fd } satisfies IoMessage)
}

let nextListener = 1

export class ListenerCore {
  private readonly id = nextListener++
  private readonly key: Buffer | null
  private readonly serializer: Serializer
  private readonly status = new Int32Array(new SharedArrayBuffer(STATUS_BYTES))
  readonly address: Address
  lastAccepted: string | null = null
  closed = false

  constructor(address: unknown = ['127.0.0.1', 0], options: ListenerOptions = {}) {
    let a = checkAddress(address, options.family)
    this.key = keyOf(options.authkey)
    this.serializer = serializerOf(options.serializer)
    const backlog = options.backlog ?? 1
    if (!Number.isInteger(backlog) || backlog < 0) throw new TypeError('backlog must be a non-negative integer')
    ioThread().postMessage({ op: 'listen', id: this.id, address: a, backlog, status: this.status.buffer as SharedArrayBuffer, authkey: this.key, maxMessageSize: maxOf(options) } satisfies IoMessage)
    // Python's Listener() binds before it returns: wait for the I/O thread (briefly).
    const end = performance.now() + 30_000
    while (Atomics.load(this.status, 0) === STATUS.WAITING && performance.now() < end) Atomics.wait(this.status, 0, STATUS.WAITING, 100)
    const s = Atomics.load(this.status, 0)
    if (s !== STATUS.CONNECTED) throw new OSError(s === STATUS.ERROR ? statusText(this.status) : 'the I/O thread did not answer')
    if (typeof a !== 'string') a = [a[0], this.status[1]]
    this.address = a
  }

  static create(address?: unknown, options?: ListenerOptions): ListenerCore {
    return new ListenerCore(address, options)
  }

  acceptBegin(): ConnectState {
    if (this.closed) throw new OSError('listener is closed')
    const st = new ConnectState(this.serializer)
    ioThread().postMessage({ op: 'offer', id: this.id, status: st.status.buffer as SharedArrayBuffer, ...st.rings() } satisfies IoMessage)
    return st
  }

  /** accept()'s attempt: the new connection, as its public AioConnection. */
  acceptAttempt<C>(st: ConnectState): C | Pending {
    const r = st.attempt()
    if (r === PENDING) return PENDING
    this.lastAccepted = st.peer
    return wrapCore<C>(r)
  }

  /** accept() has no timeout; an abort withdraws the offer (the abort's reason is what the caller sees). */
  acceptExpire(st: ConnectState): never {
    st.expire()
    throw new OSError('accept aborted')
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    ioThread().postMessage({ op: 'closeListener', id: this.id } satisfies IoMessage)
  }

  describe(): string {
    return `address=${JSON.stringify(this.address)}${this.closed ? ', closed' : ''}`
  }
}

/** Starts connecting; the returned state's attempt finishes the connection and the handshake. */
export function connectBegin(address: unknown, options: SocketOptions = {}): ConnectState {
  const a = checkAddress(address, options.family)
  const key = keyOf(options.authkey)
  const st = new ConnectState(serializerOf(options.serializer))
  ioThread().postMessage({ op: 'connect', address: a, status: st.status.buffer as SharedArrayBuffer, ...st.rings(), authkey: key, maxMessageSize: maxOf(options) } satisfies IoMessage)
  return st
}


/** Connects (blocking, as Python's Client) or, with `coroConnect`, without parking the thread. */
export function connectAttempt<C>(st: ConnectState): C | Pending {
  const r = st.attempt()
  return r === PENDING ? PENDING : wrapCore<C>(r)
}

/** Whether a connection has something to read (or its peer closed); false for a send-only end. */
const readable = (c: ConnectionCore): boolean => c.rx !== null && c.rx.readable()

/**
 * The connections of `conns` with something to read (or whose peer closed); else PENDING with
 * `ws[k]` parked on the k-th connection that reads, for as many as `ws` holds.
 */
export function waitAnyAttempt<C>(conns: readonly C[], cores: readonly ConnectionCore[], ws: readonly Waiter[]): C[] | Pending {
  const ready = conns.filter((_, i) => readable(cores[i]))
  if (ready.length > 0 || ws.length === 0) return ready
  let k = 0
  for (const c of cores) {
    if (c.rx === null) continue
    // Parks it on its ring's data word; true when something came since the look above.
    if (c.rx.pollAttempt(ws[k++]) !== PENDING) return waitAnyAttempt(conns, cores, ws)
    if (k === ws.length) break
  }
  return PENDING
}

/** wait()'s first look at its other connections comes this soon (ms); each look doubles the step, up to WAIT_LOOK_MAX_MS. */
const WAIT_LOOK_FIRST_MS = 0.05
const WAIT_LOOK_MAX_MS = 5
/** How long wait() looks at all its connections in a tight loop before its first sleep, in ms (while looks are on: idle-core.ts LOOKS). */
const WAIT_SPIN_MS = 0.1

/**
 * wait()'s attempt. A thread sleeps on one word: `ws` is one waiter, parked on the first
 * connection that reads, and the others are looked at after a step that starts at 50 µs and
 * doubles up to 5 ms (`look` keeps it for one call), after a tight look at them all of up to
 * 100 µs where a core is free (idle-core.ts): a message that comes soon is seen soon, and a long
 * wait costs 200 wake-ups a second. A ping-pong through wait() on 4 connections, answered on the
 * last (bench/pipes.ts), made ~285 round trips a second with a fixed 5 ms step, ~6.7k with the
 * growing step, ~23k with the look too (Python's select()-based wait ~27k in the same run).
 * (A shared wake-up word for a set of connections would need every writer to know the sets it is
 * in; Python's wait() uses select() for this, which a shared-memory ring has no form of.
 * coro_wait sleeps on them all.)
 */
export function waitReadyAttempt<C>(conns: readonly C[], cores: readonly ConnectionCore[], ws: readonly [Waiter], look: { ms: number }): C[] | Pending {
  const r = waitAnyAttempt(conns, cores, ws)
  if (r === PENDING && cores.length > 1) {
    if (look.ms === 0 && lookFor(() => cores.some(readable), WAIT_SPIN_MS)) return waitAnyAttempt(conns, cores, ws)
    look.ms = look.ms === 0 ? WAIT_LOOK_FIRST_MS : Math.min(WAIT_LOOK_MAX_MS, look.ms * 2)
    ws[0].waitCapMs = look.ms
  }
  return r
}
