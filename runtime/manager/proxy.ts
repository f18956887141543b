// The client side of a manager (Python's BaseProxy and its connection): one connection per
// server and thread, on which calls are numbered so that awaitable calls can be in flight together.
//
// A blocking call sends its request and blocks the thread until the answer is read: in a
// process's main thread over a socket of its own that it reads and writes with system calls
// (SyncPipe.here), and from the fourth call on a fast lane of FIFOs (sync-pipe.ts); in a worker
// thread, or to a TCP address, over a connection that the I/O thread pumps and that wakes the
// thread when the answer comes. Awaitable calls go over a socket of the thread's own event loop;
// each answer is matched to its call by number, so many can be in flight.
//
// An aborted awaitable call sends CANCEL and still waits for the server's answer: either the
// server aborted it (nothing was acquired or taken, and the call rejects with the abort's reason)
// or it had already finished, and its result is delivered (too late to cancel, as everywhere in
// this library). A server that goes away fails every pending call with OSError.

import { isMainThread, threadId } from 'node:worker_threads'
import { debuglog } from 'node:util'
import { SyncPipe } from './sync-pipe.js'
import { connectAttempt, connectBegin } from '../ipc/sockets.js'
import { blockOn } from '../core/wait.js'
import { flushSync, type Connection } from '../ipc/connection.js'
import { AuthenticationError, OSError, ValueError } from '../core/errors.js'
import { rebuildError, type ErrorRecord } from '../core/remote-error.js'
import { OP_ACK, OP_ADOPT, OP_CALL, OP_CANCEL, OP_CREATE, OP_DECREF, OP_DESCRIBE, OP_HELLO, OP_INCREF, OP_PUT_BACK, OP_SHUTDOWN, OP_SYNC, increfLocal, keyBytes, localReferent, releaseLocal, type Answer, type ProxyState, type Request } from './protocol.js'
import * as net from 'node:net'
import { REBUILDER, destinationOf, noteCounted, ownClientKey, setCountedReleaser } from '../core/destination.js'
import { newClientKey } from '../core/client-key.js'
import { decodeFromPeer, encode, encodeAside, encodeCopy, encoded } from '../ipc/serialize.js'
import { FramedSocket } from '../ipc/framed-socket.js'
import { MAX_MESSAGE_BYTES } from '../ipc/framing.js'
import { collectingUnloaded, unloadedError, type ClassNotLoadedError } from '../core/transfer.js'

/** Blocking calls a thread makes over its connection before it opens a fast lane. */
const LANE_AFTER_CALLS = 3

/** The proxy classes by typeid, filled by the generated proxy modules (and the hand-written ones). */
export const PROXY_CLASSES = new Map<string, new (core: ProxyCore) => unknown>()

/** The public proxy for a core. */
export function wrapProxy(core: ProxyCore): unknown {
  const cls = PROXY_CLASSES.get(core.state.typeid) ?? PROXY_CLASSES.get('*')
  if (!cls) throw new TypeError(`no proxy class for typeid '${core.state.typeid}'`)
  return new cls(core)
}

// NODE_DEBUG=aioprocessing: say why a main thread's blocking calls got no fast lane (they still work, slower).
const debug = debuglog('aioprocessing')

function addressText(a: ProxyState['address']): string {
  return typeof a === 'string' ? a : `${a[0]}:${a[1]}`
}

interface Pending {
  resolve(value: unknown): void
  reject(error: unknown): void
  aborted?: { reason: unknown }
}

/**
 * This thread's link to one server: a connection for blocking calls (pumped by the I/O thread,
 * so the calling thread can block on it) and, from the first awaitable call, a socket of this
 * thread's own event loop for awaitable calls (no hop through another thread). Both announce the
 * same client key, so the server sees one client: it owns RLocks through either.
 */
class Channel {
  private sync: Connection | SyncPipe | undefined
  private lane: SyncPipe | null | undefined
  /** Blocking calls' connection where a main thread gets no lane (see fast). */
  private pumped: Connection | undefined
  private blockingCalls = 0
  /** The client this thread is to its servers: the key its starter counted its arguments' proxies for, if it was given one (core/destination.ts). */
  readonly key = ownClientKey() ?? newClientKey()
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private socket: Promise<FramedSocket> | undefined
  private broken: Error | undefined

  /** Connects nothing yet: a blocking call opens the blocking connection, an awaitable one the socket. */
  constructor(readonly address: ProxyState['address'], private readonly authkey: string | null) {}

  private unreachable(error: unknown): Error {
    if (error instanceof AuthenticationError) return error
    return new OSError(`cannot reach the manager at ${addressText(this.address)}: ${(error as Error).message}`, { cause: error })
  }

  /**
   * The connection for blocking calls and references, opened (blocking) on first use. A
   * process's main thread connects to a Unix socket itself (sync-pipe.ts SyncPipe.here): its
   * first call then waits for no other thread (a spawned process's first message waited for its
   * I/O thread to boot), and from the fourth on its calls take a fast lane. A worker thread's
   * blocking calls, which take no lane, and calls over TCP go through the I/O thread, which wakes
   * the thread when the answer comes.
   */
  private get conn(): Connection | SyncPipe {
    if (!this.sync) {
      let own: SyncPipe | null = null
      try {
        // A server that goes away closes it between calls (the I/O thread's connection did so
        // too): its fds, and the lane's, are not kept until a next call that may never come.
        if (isMainThread && typeof this.address === 'string') own = SyncPipe.here(this.address, keyBytes(this.authkey), (pipe) => this.sync === pipe && this.closeOwn())
        own?.sendBytes(encodeAside([0, OP_HELLO, this.key] satisfies Request))
      } catch (error) {
        own?.close()
        throw this.unreachable(error)
      }
      this.sync = own ?? this.pumpedConnection()
    }
    return this.sync
  }

  /**
   * A connection that the I/O thread pumps, announced as this client. For blocking calls of a
   * main thread that gets no lane (a server in a worker thread cannot open FIFOs for it) too:
   * a long wait on it costs no wake-ups, where a read of the thread's own socket polls.
   */
  private pumpedConnection(): Connection {
    try {
      const st = connectBegin(this.address, { authkey: keyBytes(this.authkey) })
      const conn = blockOn<Connection>(st, () => connectAttempt<Connection>(st), Infinity, () => st.expire() as never, true)
      conn.sendBytes(encodeAside([0, OP_HELLO, this.key] satisfies Request))
      return conn
    } catch (error) {
      throw this.unreachable(error)
    }
  }

  /** Connects now (blocking): a wrong authkey or an absent server shows here. */
  probe(): void {
    void this.conn
  }

  get isBroken(): boolean {
    return this.broken !== undefined
  }

  private gone(error: unknown): Error {
    this.broken ??= new OSError(`the manager at ${addressText(this.address)} is gone (${(error as Error)?.message ?? String(error)}); its objects cannot be used any more`, { cause: error })
    this.closeOwn()
    return this.broken
  }

  /**
   * Closes the fds this thread reads itself: the fast lane's (the server's end goes with the
   * connection that opened it) and its own socket, which no event loop reads, so nothing else
   * would see the server's end of it. (The I/O thread closes its connection when the server does.)
   */
  closeOwn(): void {
    this.lane?.close()
    if (this.lane) this.lane = null
    if (this.sync instanceof SyncPipe) {
      this.sync.close()
      this.sync = undefined
    }
  }

  private outcome(msg: Answer): { ok: boolean; value: unknown } {
    const [, ok, value] = msg
    return { ok, value: ok ? value : rebuildError(value as ErrorRecord, `the manager at ${addressText(this.address)}`) }
  }

  /** Encodes a request into the serializer's scratch buffer; one the server would refuse unread is refused here. */
  private encodeRequest(request: Request): number {
    const n = encode(request, 'obj')
    if (n > MAX_MESSAGE_BYTES) {
      throw new ValueError(`a call to the manager at ${addressText(this.address)} encodes to ${n} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit of a frame; nothing was sent (pass large data through a queue or a pipe in parts)`)
    }
    return n
  }

  /** A send that failed: the caller's own bad argument (the connection is fine), or the server gone. */
  private sendFailed(error: unknown, request: Request, names?: readonly string[]): Error {
    if (error instanceof ValueError) return error
    if (error instanceof TypeError) {
      // The serializer names the value's path in the request: say it in the caller's terms.
      const what = request[1] === OP_CALL ? `${request[3]}() argument ` : 'argument '
      error.message = error.message.replace(/^(?:obj|item)\[\d+\]\[(\d+)\]/, (_, i) => names?.[Number(i)] ?? `${what}${i}`)
      return error
    }
    return this.gone(error)
  }

  /**
   * The fast lane for this thread's blocking calls (sync-pipe.ts), opened on the first one after
   * LANE_AFTER_CALLS: only in a process's main thread (a worker thread can be terminated, and its
   * fds would stay open) and where the server can make one (a manager on this machine). Where
   * none comes, the calls go on over the connection, one the I/O thread pumps (pumpedConnection).
   */
  private get fast(): SyncPipe | Connection | null {
    // Opening a lane costs a round trip and two FIFOs on the server: not for a thread that makes
    // a call or two (a process's first message then goes no slower).
    if (this.lane === undefined && ++this.blockingCalls > LANE_AFTER_CALLS) {
      this.lane = null
      if (isMainThread && process.env.AIOPROCESSING_NO_LANE !== '1') {
        try {
          const paths = this.callOver(this.conn, [0, OP_SYNC]) as { request: string; answer: string } | null
          if (paths) this.lane = SyncPipe.open(paths.request, paths.answer)
          else debug(`the manager at ${addressText(this.address)} opened no fast lane: this thread's blocking calls go through its I/O thread`)
        } catch (error) {
          if (this.broken) throw this.broken
          debug(`no fast lane to the manager at ${addressText(this.address)} (${(error as Error)?.message ?? String(error)}): this thread's blocking calls go through its I/O thread`)
        }
      }
      if (this.lane === null && this.sync instanceof SyncPipe) {
        try {
          this.pumped = this.pumpedConnection()
        } catch {
          // No fd or thread for it (EMFILE, which also kept the lane away): the calls stay on
          // this thread's own socket, which works.
        }
      }
    }
    return this.lane ?? this.pumped ?? null
  }

  /** A blocking call; the request's call id (0 as given) is numbered here. */
  call(request: Request, names?: readonly string[]): unknown {
    if (this.broken) throw this.broken
    // Connected first: connecting announces this client, which uses the serializer's scratch buffer.
    return this.callOver(this.fast ?? this.conn, request, names)
  }

  /** A blocking call over the lane or the connection: one write, one read, and an acknowledgement if the call took something. */
  private callOver(wire: SyncPipe | Connection, request: Request, names?: readonly string[]): unknown {
    request[0] = this.nextId++
    let n: number
    try {
      n = this.encodeRequest(request)
    } catch (error) {
      throw this.sendFailed(error, request, names)
    }
    try {
      wire.sendBytes(encoded().subarray(0, n))
    } catch (error) {
      throw this.gone(error)
    }
    let msg: Answer
    let unloaded: ClassNotLoadedError[]
    try {
      ;({ value: msg, unloaded } = collectingUnloaded(() => (wire instanceof SyncPipe ? decodeFromPeer(wire.recv()) : wire.recv()) as Answer))
    } catch (error) {
      this.failAll(error)
      throw this.gone(error)
    }
    if (unloaded.length) {
      // The answer holds an object whose class this thread has not loaded: the call fails, what
      // it took goes back, the connection goes on.
      releaseUnloaded(unloaded)
      if (msg[3] === true) this.sendOver(wire, [this.nextId++, OP_PUT_BACK, msg[0]])
      throw unloadedError(unloaded, unloadedOutcome(msg))
    }
    if (msg[3] === true) {
      // The call took something: say so before returning, and see that it left this process, so
      // that the server puts it back only if this thread dies before the call returned. (A
      // lane's write is in the kernel when it returns.)
      this.sendOver(wire, [this.nextId++, OP_ACK, msg[0]])
    }
    const r = this.outcome(msg)
    if (r.ok) return r.value
    throw r.value
  }

  /** Sends a request that has no answer (OP_ACK, OP_PUT_BACK) and sees it leave this process (a lane's write is in the kernel when it returns). */
  private sendOver(wire: SyncPipe | Connection, request: Request): void {
    try {
      wire.sendBytes(encodeCopy(request, 'obj'))
      if (!(wire instanceof SyncPipe)) flushSync(wire)
    } catch (error) {
      throw this.gone(error)
    }
  }

  /**
   * Tells the server of a reference to object `id`: a proxy collected (OP_DECREF), sent on
   * (OP_INCREF) or rebuilt here (OP_ADOPT). Nothing is awaited, a server that is gone needs no
   * telling. All go on the blocking connection, in order (a sender's INCREF is ahead of its
   * DECREF), written at once (this thread's own socket) or pumped by the I/O thread even while
   * this thread blocks, and so before this process ends; and none touches the scratch buffer of
   * an encode that may be under way.
   */
  reference(op: typeof OP_DECREF | typeof OP_INCREF | typeof OP_ADOPT, id: number): void {
    this.tell([this.nextId++, op, id])
  }

  /** One more reference to object `id`, owned by client `to` (core/destination.ts), or this client itself: a pool task's argument rebuilt here. */
  increfFor(id: number, to = this.key): void {
    this.tell([this.nextId++, OP_INCREF, id, to])
  }

  /** Sends a request that has no answer (see reference()). */
  private tell(request: Request): void {
    if (this.broken) return
    try {
      this.conn.sendBytes(encodeAside(request))
    } catch {
      // the server is gone: nothing to count any more
    }
  }

  /** The socket for awaitable calls: connected, authenticated and announced on first use. */
  private async asyncSocket(): Promise<FramedSocket> {
    this.socket ??= new Promise<FramedSocket>((resolve, reject) => {
      const a = this.address
      const sock = typeof a === 'string' ? net.connect(a) : net.connect(a[1], a[0])
      sock.setNoDelay(true)
      let connected = false
      sock.once('connect', () => (connected = true))
      const channel: FramedSocket = new FramedSocket(sock, {
        role: 'client',
        authkey: keyBytes(this.authkey),
        ready: () => {
          channel.send(encodeCopy([0, OP_HELLO, this.key] satisfies Request, 'obj'))
          sock.unref() // only pending calls keep this process alive
          resolve(channel)
        },
        message: (bytes) => this.answered(channel, bytes),
        // Settles the connect only: a connection that was up fails its calls when it closes.
        ended: (error) => {
          if (error) reject(connected && !(error instanceof AuthenticationError) ? this.gone(error) : this.unreachable(error))
        },
        closed: () => {
          this.socket = undefined
          // Closed before the handshake ended (the server died meanwhile): the connect fails too.
          reject(connected ? this.gone(new Error('the connection closed')) : this.unreachable(new Error('the connection closed')))
          if (this.pending.size) this.failAll(new Error('the connection closed'))
        },
      })
    })
    return this.socket
  }

  /**
   * An answer on the awaitable socket. One holding an object whose class this thread has not
   * loaded fails its call, as a blocking call's does (call()), and what the call took goes back.
   */
  private answered(channel: FramedSocket, bytes: Buffer): void {
    let answer: Answer
    let unloaded: ClassNotLoadedError[]
    try {
      ;({ value: answer, unloaded } = collectingUnloaded(() => decodeFromPeer(bytes) as Answer))
    } catch (error) {
      // Not a manager (or not ours): the connection is dropped and its calls fail.
      channel.abort(error as Error)
      return
    }
    if (unloaded.length) {
      releaseUnloaded(unloaded)
      if (answer[3] === true) channel.send(encodeCopy([this.nextId++, OP_PUT_BACK, answer[0]] satisfies Request, 'obj'))
      const p = this.pending.get(answer[0])
      this.pending.delete(answer[0])
      p?.reject(p.aborted ? p.aborted.reason : unloadedError(unloaded, unloadedOutcome(answer)))
    } else {
      // The call took something: acknowledge it before the caller has it (see call()).
      if (answer[3] === true) channel.send(encodeCopy([this.nextId++, OP_ACK, answer[0]] satisfies Request, 'obj'))
      this.deliver(answer)
    }
    if (this.pending.size === 0) channel.socket.unref()
  }

  private deliver(msg: Answer): void {
    const p = this.pending.get(msg[0])
    if (!p) return
    this.pending.delete(msg[0])
    const r = this.outcome(msg)
    if (p.aborted && !r.ok) p.reject(p.aborted.reason)
    else if (r.ok) p.resolve(r.value)
    else p.reject(r.value)
  }

  /** An awaitable call; the request's call id (0 as given) is numbered here. */
  async coro_call(request: Request, signal?: AbortSignal, names?: readonly string[]): Promise<unknown> {
    if (this.broken) throw this.broken
    signal?.throwIfAborted()
    const channel = await this.asyncSocket()
    signal?.throwIfAborted() // aborted while connecting: nothing was sent
    const id = (request[0] = this.nextId++)
    let n: number
    try {
      n = this.encodeRequest(request)
    } catch (error) {
      throw this.sendFailed(error, request, names)
    }
    const p = {} as Pending
    const answer = new Promise<unknown>((resolve, reject) => {
      p.resolve = resolve
      p.reject = reject
    })
    this.pending.set(id, p)
    channel.socket.ref()
    channel.send(encoded().subarray(0, n))
    // The server answers most calls within tens of µs: looked for on turns of the loop, sooner than its wake-up.
    // Until every call in flight is answered: one watch per socket serves them all.
    channel.watchFor(() => this.pending.size === 0)
    const onAbort = (): void => {
      p.aborted = { reason: signal!.reason }
      channel.send(encodeCopy([this.nextId++, OP_CANCEL, id] satisfies Request, 'obj'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await answer
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  private failAll(error: unknown): void {
    const e = this.gone(error)
    for (const p of this.pending.values()) p.reject(e)
    this.pending.clear()
  }
}

/**
 * Gives back the references that the proxy records of `unloaded` carried. A proxy's sender counts
 * one for its receiver (reduce()), which a rebuild takes over (OP_ADOPT) and drops once the proxy
 * is collected (OP_DECREF): a record that cannot be rebuilt as its class is rebuilt as a bare core
 * and dropped, which does both, in the same order and time as any proxy (a DECREF sent at once may
 * pass its sender's INCREF, which comes over another connection, and then counts nothing).
 * Without it, its object lived on its server for ever. One of this thread's own server is let go
 * there, as its rebuild as the object itself would (protocol.ts localReferent).
 */
export function releaseUnloaded(unloaded: readonly ClassNotLoadedError[]): void {
  for (const { state } of unloaded) {
    const s = state as Partial<ProxyState> | null
    if (typeof s !== 'object' || s === null || typeof s.id !== 'number' || !(typeof s.address === 'string' || Array.isArray(s.address))) continue
    if (!releaseLocal(s as ProxyState)) ProxyCore.rebuild(s as ProxyState)
  }
}

/** What became of a call whose answer cannot be read here (unloadedError). */
function unloadedOutcome(answer: Answer): string {
  return answer[3] === true ? 'the item the call took went back to the queue' : 'the call ran on the manager, and its answer is dropped'
}

/** This thread's channels, by server address and key. */
const channels = new Map<string, Channel>()

export function channelTo(address: ProxyState['address'], authkey: string | null): Channel {
  const key = `${threadId} ${addressText(address)} ${authkey ?? ''}`
  let ch = channels.get(key)
  // A server that went away may be back at the same address: a broken channel is replaced.
  if (!ch || ch.isBroken) {
    ch = new Channel(address, authkey)
    channels.set(key, ch)
  }
  return ch
}

/** Forgets this thread's connection to a server (after its shutdown). */
export function dropChannel(address: ProxyState['address'], authkey: string | null): void {
  const key = `${threadId} ${addressText(address)} ${authkey ?? ''}`
  channels.get(key)?.closeOwn()
  channels.delete(key)
}

/** Python's Pipe() with both ends served by a server: proxies of two connected ends. */
export function createPipe<C>(address: ProxyState['address'], authkey: string | null, duplex: boolean): [C, C] {
  if (typeof duplex !== 'boolean') throw new TypeError('duplex must be a boolean')
  return channelTo(address, authkey).call([0, OP_CREATE, 'Pipe', [duplex]]) as [C, C]
}

/** Asks a server to stop. */
export function shutdownRemote(address: ProxyState['address'], authkey: string | null): void {
  channelTo(address, authkey).call([0, OP_SHUTDOWN])
}

/**
 * Proxies made by create(): when one is collected, its server is told (OP_DECREF) and drops the
 * object, as Python's manager does when a proxy's refcount reaches 0.
 */
const collected = new FinalizationRegistry<ProxyState>((h) => channelTo(h.address, h.authkey).reference(OP_DECREF, h.id))

// The references a pool task's proxies were counted for while it was in the pool (ProxyCore.reduce).
setCountedReleaser((refs) => {
  for (const r of refs) channelTo(r.address, r.authkey).reference(OP_DECREF, r.id)
})

/** A proxy's state and its calls. */
export class ProxyCore {
  /** Sent on (reduce()) at least once: another thread or process may hold a proxy of the same object. */
  private sentOn = false
  /** A pipe end's handle closed here while others may hold it (closeHandleOnly()). */
  private released = false

  constructor(readonly state: ProxyState) {}

  /** A proxy that holds a reference: when it is collected, the server is told. */
  private static counted(state: ProxyState): ProxyCore {
    const core = new ProxyCore(state)
    collected.register(core, { ...state }, core)
    return core
  }

  /** The proxy of an object create() just made: the server counted its reference already. */
  static created(state: ProxyState): ProxyCore {
    return ProxyCore.counted(state)
  }

  /**
   * A proxy sent here: it takes over the reference its sender counted (reduce()), unless that was
   * counted for this thread already; a pool task's (REBUILDER) carried none: it counts its own.
   */
  static rebuild(record: ProxyState): ProxyCore {
    const { to, ...state } = record
    const core = ProxyCore.counted(state)
    const channel = channelTo(state.address, state.authkey)
    if (to === REBUILDER) channel.increfFor(state.id)
    // Counted for this thread already: by its starter (its args: the channel's key is then the
    // one it was given, ownClientKey), or by the server (a call's answer).
    else if (to !== channel.key) channel.reference(OP_ADOPT, state.id)
    return core
  }

  /** In the server's own thread, a proxy of one of its objects is that object. */
  static referent(state: ProxyState): unknown {
    return localReferent(state)
  }

  /**
   * Sent on: one more reference, counted before this side can drop its own (see reference()); for
   * the client it goes to when that is known (a process's arguments), which then owns it at once.
   */
  reduce(): ProxyState {
    this.sentOn = true
    const to = destinationOf(this.state)
    if (to === REBUILDER) {
      // A pool task's: counted for this client while the task is in the pool, and by the worker
      // that rebuilds it (core/destination.ts). In the server's own thread, as any record sent on.
      if (increfLocal(this.state)) return this.state
      channelTo(this.state.address, this.state.authkey).increfFor(this.state.id)
      noteCounted({ address: this.state.address, authkey: this.state.authkey, id: this.state.id })
      return { ...this.state, to }
    }
    if (!increfLocal(this.state, to)) {
      const channel = channelTo(this.state.address, this.state.authkey)
      if (to === undefined) channel.reference(OP_INCREF, this.state.id)
      else channel.increfFor(this.state.id, to)
    }
    return to === undefined ? this.state : { ...this.state, to }
  }

  /** A method call on the referent; `names` (the parameters') let an unsendable argument be named. */
  call(method: string, args: unknown[], names?: readonly string[]): unknown {
    if (this.released || (method === 'close' && this.closeHandleOnly())) return this.onReleased(method, args)
    return this.answer(channelTo(this.state.address, this.state.authkey).call([0, OP_CALL, this.state.id, method, args], names))
  }

  async coro_call(method: string, args: unknown[], signal?: AbortSignal, names?: readonly string[]): Promise<unknown> {
    if (this.released || (method === 'close' && this.closeHandleOnly())) return this.onReleased(method, args)
    return this.answer(await channelTo(this.state.address, this.state.authkey).coro_call([0, OP_CALL, this.state.id, method, args], signal, names))
  }

  /**
   * Closes only this handle of a pipe end, and says so, when that is what close() means, as
   * closing a Connection's fd does in Python: the end was sent on (to a process's args, say), so
   * another thread or process may hold it. Python's idiom, `p.start(); childEnd.close()` in the
   * parent, closed the child's end too. The end closes, and its peer reads EOF, when its last
   * holder closes it or is gone (the server closes a pipe end whose references are all gone:
   * manager-server.ts dropLater).
   */
  private closeHandleOnly(): boolean {
    if (!this.sentOn || this.state.typeid !== 'Connection') return false
    this.released = true
    collected.unregister(this)
    channelTo(this.state.address, this.state.authkey).reference(OP_DECREF, this.state.id)
    return true
  }

  /** A call on a pipe end whose handle was closed here: what a closed Connection answers. */
  private onReleased(method: string, args: unknown[]): unknown {
    if (method === 'close') return undefined
    if (method === '__get__' && args[0] === 'closed') return true
    throw new OSError('handle is closed')
  }

  /** A returned proxy record (`{ __proxy__, typeid, id }`) becomes a proxy on the same server. */
  private answer(value: unknown): unknown {
    if (value !== null && typeof value === 'object' && (value as { __proxy__?: boolean }).__proxy__) {
      const r = value as { typeid: string; id: number }
      return wrapProxy(new ProxyCore({ ...this.state, id: r.id, typeid: r.typeid }))
    }
    return value
  }

  describe(): string {
    try {
      return String(channelTo(this.state.address, this.state.authkey).call([0, OP_DESCRIBE, this.state.id]))
    } catch {
      return `typeid='${this.state.typeid}' id=${this.state.id} at ${addressText(this.state.address)}, unreachable`
    }
  }
}
