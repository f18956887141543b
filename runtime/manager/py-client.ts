// Node as a client of a Python manager (`AioManager.connect({ address, authkey, serializer:
// 'pickle' })`): the library's proxy classes over a core that speaks Python's manager protocol
// (py-server.ts describes the wire). Names go camelCase → snake_case, milliseconds → seconds, and
// Python's exceptions come back as the library's errors (Empty, Full, BrokenBarrierError,
// ValueError) or as RemoteError naming the Python class.
//
// Python's server runs one request at a time per connection, on a thread of its own. A thread
// here keeps idle connections per manager and takes one per call, so that awaitable calls may be
// in flight together. An awaitable wait with an AbortSignal (a queue's get or put, an acquire, an
// Event's or Condition's wait) goes in slices of at most SLICE_MS: Python cannot cancel a call, and
// an abort must take nothing, so it is honoured between slices, and a slice that took something
// after the abort still returns it (the call had finished).

import { randomUUID } from 'node:crypto'
import * as net from 'node:net'
import { FramedSocket } from '../ipc/framed-socket.js'
import { dumps, loads, PyObject, PyTuple, tuple } from '../ipc/pickle.js'
import { EOFError, Empty, Full, NotImplementedError, OSError, RemoteError, RuntimeError } from '../core/errors.js'
import { ProxyCore, wrapProxy } from './proxy.js'
import { SyncPipe } from './sync-pipe.js'
import { fromPythonClass } from './py-errors.js'
import { keyBytes, type ProxyState } from './protocol.js'

/** The longest a sliced awaitable wait asks Python to wait before it looks at its signal again. */
const SLICE_MS = 100

// Python's server listens with a backlog of 16 and accepts in one thread, which starts a thread
// per connection. A burst of connects (60 awaitable calls at once) overflows that queue, and the
// kernel may drop a connection silently (a syncookie connection whose last ACK found the queue
// full): the client sees a connection, the server has none, and as Python's client speaks only
// after the server's challenge, both wait forever. So a thread opens at most MAX_OPENING
// connections to a manager at once, and one that sees no handshake within HANDSHAKE_MS is dropped
// and opened again (nothing was sent on it), HANDSHAKE_TRIES times at most.
const MAX_OPENING = 4
const HANDSHAKE_MS = 5000
const HANDSHAKE_TRIES = 6

function handshakeLost(a: Address): OSError {
  return new OSError(`the manager at ${keyOf(a)} did not answer: none of ${HANDSHAKE_TRIES} connections began its authkey handshake within ${HANDSHAKE_MS} ms`)
}

type Address = ProxyState['address']

const keyOf = (a: Address): string => (typeof a === 'string' ? a : `${a[0]}:${a[1]}`)

/**
 * A connection for blocking calls: the calling thread reads and writes the socket itself
 * (SyncPipe.socket), so a call costs what Python's own client's does, with no hop through the
 * I/O thread.
 */
class SyncConn {
  private readonly pipe: SyncPipe
  constructor(a: Address, authkey: string | null, pipe?: SyncPipe) {
    for (let tries = 1; !pipe; tries++) {
      pipe = SyncPipe.socket(typeof a === 'string' ? a : [a[0], a[1]], keyBytes(authkey), HANDSHAKE_MS) ?? undefined
      if (!pipe && tries === HANDSHAKE_TRIES) throw handshakeLost(a)
    }
    this.pipe = pipe
  }

  /** A new connection, awaited: the same handshake bound and retries. */
  static async open(a: Address, authkey: string | null): Promise<SyncConn> {
    for (let tries = 1; ; tries++) {
      const pipe = await SyncPipe.coroSocket(typeof a === 'string' ? a : [a[0], a[1]], keyBytes(authkey), HANDSHAKE_MS)
      if (pipe) return new SyncConn(a, authkey, pipe)
      if (tries === HANDSHAKE_TRIES) throw handshakeLost(a)
    }
  }
  request(msg: unknown): unknown {
    this.pipe.sendBytes(dumps(msg))
    return loads(this.pipe.recv())
  }
  /** An awaitable request on this connection: sent at once, its answer polled for without blocking the thread. */
  async requestPolled(msg: unknown): Promise<unknown> {
    this.pipe.sendBytes(dumps(msg))
    // Most answers come within a few hundred µs: turns of the event loop first, then timers, up to POLL_CAP_MS apart.
    const start = performance.now()
    for (let delay = 1; !this.pipe.poll(); ) {
      if (performance.now() - start < 0.5) await new Promise<void>((r) => setImmediate(r))
      else {
        await new Promise<void>((r) => setTimeout(r, delay))
        delay = Math.min(POLL_CAP_MS, delay * 2)
      }
    }
    return loads(this.pipe.recv())
  }
  close(): void {
    this.pipe.close()
  }
}

/** The longest an awaited call on a pinned connection sleeps between looks for its answer. */
const POLL_CAP_MS = 4

/**
 * Owned types: in Python, an RLock's owner (and the owner of a Condition's lock) is the server
 * thread that serves a connection, and Python's client gives each thread one connection per proxy.
 * So a proxy of one of these makes every call of its thread, blocking or awaited, on one connection
 * of its own: `coro_acquire()` then `release()` are one owner, as in Python. Blocking calls read
 * and write it directly; awaited ones, one at a time, send at once and poll for the answer.
 */
const OWNED = new Set(['RLock', 'Condition'])

class PinnedConn {
  private readonly conn: SyncConn
  /** The awaited call in flight, which the next one waits for. */
  private tail: Promise<unknown> = Promise.resolve()
  private busy = false

  private constructor(conn: SyncConn) {
    this.conn = conn
  }

  static open(a: Address, authkey: string | null): PinnedConn {
    return new PinnedConn(acceptedSync(a, authkey))
  }

  static async coroOpen(a: Address, authkey: string | null): Promise<PinnedConn> {
    const conn = await SyncConn.open(a, authkey)
    try {
      answer(await conn.requestPolled(tuple(null, 'accept_connection', tuple(NAME), {})), a)
    } catch (error) {
      conn.close()
      throw error
    }
    return new PinnedConn(conn)
  }

  request(msg: unknown): unknown {
    if (this.busy) throw new RuntimeError("a blocking call of a Python manager's RLock or Condition while an awaited call of the same proxy is in flight in this thread: Python serves one call at a time per owner; await it first")
    return this.conn.request(msg)
  }

  requestAsync(msg: unknown): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      this.busy = true
      try {
        return await this.conn.requestPolled(msg)
      } finally {
        this.busy = false
      }
    }
    const next = this.tail.then(run, run)
    this.tail = next.catch(() => {})
    return next
  }

  close(): void {
    this.conn.close()
  }
}

/** A connection for awaitable calls: a socket of this thread's event loop, one request at a time. */
class LoopConn {
  private readonly framed: FramedSocket
  private readonly socket: net.Socket
  private readonly opened: Promise<void>
  private waiting: { resolve(b: Buffer): void; reject(e: Error): void } | undefined
  private failure: Error | undefined
  private isOpen = false

  constructor(a: Address, authkey: string | null) {
    this.socket = typeof a === 'string' ? net.connect({ path: a }) : net.connect({ host: a[0], port: a[1] })
    this.socket.setNoDelay(true)
    let opened!: () => void
    let refused!: (e: Error) => void
    this.opened = new Promise<void>((resolve, reject) => ((opened = resolve), (refused = reject)))
    // A connection that fails before anyone waits for its handshake is told by `failure` and the
    // next call: unhandled, the rejection ended the process (a Python manager that closed a
    // connection as it was made, under load in CI).
    this.opened.catch(() => {})
    const fail = (cause: Error): void => {
      // A system error of the socket (ECONNREFUSED...) is an OSError, as on the blocking path.
      const error = cause.constructor === Error ? new OSError(cause.message, { cause }) : cause
      this.failure ??= error
      refused(error)
      this.waiting?.reject(error)
      this.waiting = undefined
    }
    this.framed = new FramedSocket(this.socket, {
      role: 'client',
      authkey: keyBytes(authkey),
      message: (bytes) => {
        const w = this.waiting
        this.waiting = undefined
        // An idle connection keeps no process alive.
        this.socket.unref()
        w?.resolve(bytes)
      },
      ready: () => opened(),
      ended: (error) => fail(error ?? new OSError(`the manager at ${keyOf(a)} closed the connection`)),
      closed: () => fail(new OSError(`the connection to the manager at ${keyOf(a)} closed`)),
    })
  }

  /** Whether the handshake is done within `ms` (false: the connection is closed); rejects when the connection failed. */
  async handshaken(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
    try {
      const done = await Promise.race([this.opened.then(() => true), late])
      if (!done) this.close()
      return done
    } finally {
      clearTimeout(timer)
    }
  }

  request(msg: unknown): Promise<unknown> {
    if (!this.isOpen) {
      return this.opened.then(() => {
        this.isOpen = true
        return this.request(msg)
      })
    }
    if (this.failure) return Promise.reject(this.failure)
    let bytes: Buffer
    try {
      bytes = dumps(msg)
    } catch (error) {
      return Promise.reject(error)
    }
    const answer = new Promise<Buffer>((resolve, reject) => (this.waiting = { resolve, reject }))
    this.socket.ref()
    this.framed.send(bytes, true)
    // Python answers most calls within ~50 µs: looked for on turns of the loop, sooner than its wake-up.
    this.framed.watchFor(() => this.waiting === undefined)
    return answer.then((b) => loads(b))
  }

  close(): void {
    this.socket.destroy()
  }
}

type Conn = SyncConn | LoopConn

/** Per manager: connections this thread is opening, and the openings waiting for one of them to finish. */
const opening = new Map<string, { count: number; queue: (() => void)[] }>()

/** A new awaitable connection, past its handshake: at most MAX_OPENING at once per manager, each retried when its handshake never begins. */
async function openLoop(a: Address, authkey: string | null): Promise<LoopConn> {
  const k = keyOf(a)
  let slots = opening.get(k)
  if (!slots) opening.set(k, (slots = { count: 0, queue: [] }))
  if (slots.count >= MAX_OPENING) await new Promise<void>((resolve) => slots.queue.push(resolve))
  else slots.count++
  try {
    for (let tries = 1; ; tries++) {
      const c = new LoopConn(a, authkey)
      if (await c.handshaken(HANDSHAKE_MS)) return c
      if (tries === HANDSHAKE_TRIES) throw handshakeLost(a)
    }
  } finally {
    // The slot goes to the next waiting opening, or back.
    const next = slots.queue.shift()
    if (next) next()
    else if (--slots.count === 0) opening.delete(k)
  }
}

/** Idle connections of this thread per manager, past 'accept_connection': each serves any object. */
const idleSync = new Map<string, SyncConn[]>()
const idleLoop = new Map<string, LoopConn[]>()

const NAME = `Node-${process.pid}-${randomUUID().slice(0, 8)}`

/** A call of the server itself on a connection of its own, as Python's dispatch() does. */
export function pyDispatch(a: Address, authkey: string | null, method: string, args: unknown[] = [], kwds: Record<string, unknown> = {}): unknown {
  const c = new SyncConn(a, authkey)
  try {
    return answer(c.request(tuple(null, method, tuple(...args), kwds)), a)
  } finally {
    c.close()
  }
}

export async function coroPyDispatch(a: Address, authkey: string | null, method: string, args: unknown[] = [], kwds: Record<string, unknown> = {}): Promise<unknown> {
  const c = await openLoop(a, authkey)
  try {
    return answer(await c.request(tuple(null, method, tuple(...args), kwds)), a)
  } finally {
    c.close()
  }
}

function takeSync(a: Address, authkey: string | null): SyncConn {
  return idleSync.get(keyOf(a))?.pop() ?? acceptedSync(a, authkey)
}

/** A new blocking connection past 'accept_connection': Python's server serves any object on it from now on. */
function acceptedSync(a: Address, authkey: string | null): SyncConn {
  const fresh = new SyncConn(a, authkey)
  try {
    answer(fresh.request(tuple(null, 'accept_connection', tuple(NAME), {})), a)
  } catch (error) {
    fresh.close()
    throw error
  }
  return fresh
}

async function takeAsync(a: Address, authkey: string | null): Promise<LoopConn> {
  const c = idleLoop.get(keyOf(a))?.pop()
  if (c) return c
  const fresh = await openLoop(a, authkey)
  try {
    answer(await fresh.request(tuple(null, 'accept_connection', tuple(NAME), {})), a)
  } catch (error) {
    fresh.close()
    throw error
  }
  return fresh
}

function giveBack(a: Address, c: Conn): void {
  const pools: Map<string, Conn[]> = c instanceof SyncConn ? idleSync : idleLoop
  const k = keyOf(a)
  let list = pools.get(k)
  if (!list) pools.set(k, (list = []))
  // A few idle connections are plenty; Python's server keeps a thread per connection.
  if (list.length < 8) list.push(c)
  else c.close()
}

/** Python's exception as the library's error: Empty, Full, BrokenBarrierError, ValueError, else RemoteError. */
export function fromPython(e: unknown, traceback?: string): Error {
  if (!(e instanceof PyObject)) return remote('Exception', [e], traceback)
  const known = fromPythonClass(e)
  if (known) return known
  return remote(e.name, [...e.args], traceback)
}

function remote(pythonType: string, args: unknown[], traceback?: string): RemoteError {
  const shown = args.length === 1 && typeof args[0] === 'string' && pythonType === 'KeyError' ? `'${args[0]}'` : args.map((x) => (typeof x === 'string' ? x : JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? String(v) : v)))).join(', ')
  const error = new RemoteError(`${pythonType}${shown ? `: ${shown}` : ''}${traceback ? `\n${traceback}` : ''}`)
  error.pythonType = pythonType
  error.args = args
  error.traceback = traceback
  return error
}

/** A Python manager's answer: its value, or its error thrown here. */
function answer(msg: unknown, a: Address): unknown {
  if (!(msg instanceof PyTuple) || msg.length !== 2) throw new OSError(`the manager at ${keyOf(a)} answered with something that is not (kind, result)`)
  const [kind, result] = msg
  if (kind === '#RETURN') return result
  if (kind === '#ERROR') throw fromPython(result)
  if (kind === '#TRACEBACK' || kind === '#UNSERIALIZABLE') {
    const text = String(result)
    const last = text.trim().split('\n').pop() ?? ''
    const m = /^([\w.]+)(?::\s*(.*))?$/.exec(last)
    throw remote(m ? m[1].split('.').pop()! : 'Exception', m?.[2] ? [m[2]] : [], text)
  }
  if (kind === '#PROXY') return new ProxyAnswer(result)
  throw new OSError(`the manager at ${keyOf(a)} answered with an unknown kind ${String(kind)}`)
}

class ProxyAnswer {
  constructor(readonly result: unknown) {}
}

/** The library's milliseconds as Python's seconds; Infinity is None (forever), as Python's waits overflow on inf. */
const toSeconds = (ms: unknown): number | null => (ms === null || ms === undefined || ms === Infinity ? null : Math.max(0, Number(ms)) / 1000)

/** A lock's or semaphore's acquire: Python's Lock refuses a timeout with blocking False. */
function acquireArgs(block: unknown, timeout: unknown): unknown[] {
  if (block === false) return [false]
  const seconds = toSeconds(timeout)
  return seconds === null ? [true] : [true, seconds]
}

/** How a library method becomes a Python call: its Python name, its arguments, and keyword arguments (sort's reverse). */
type Translation = [python: string, args: (a: unknown[]) => unknown[], kwds?: (a: unknown[]) => Record<string, unknown>]
const same = (a: unknown[]): unknown[] => a
const none = (): unknown[] => []

const QUEUE: Record<string, Translation> = {
  put: ['put', ([item, block, t]) => [item, block ?? true, toSeconds(t)]],
  get: ['get', ([block, t]) => [block ?? true, toSeconds(t)]],
  qsize: ['qsize', none],
  empty: ['empty', none],
  full: ['full', none],
}
const LOCK: Record<string, Translation> = {
  acquire: ['acquire', ([b, t]) => acquireArgs(b, t)],
  release: ['release', none],
}
const TRANSLATIONS: Record<string, Record<string, Translation>> = {
  Queue: QUEUE,
  JoinableQueue: {
    ...QUEUE,
    taskDone: ['task_done', none],
    join: [
      'join',
      ([t]) => {
        if (t !== null && t !== undefined) throw new NotImplementedError("join(timeout) on a Python manager's queue: Python's JoinableQueue.join() has no timeout")
        return []
      },
    ],
  },
  Lock: LOCK,
  RLock: LOCK,
  Semaphore: { ...LOCK, release: ['release', ([n]) => [n ?? 1]] },
  BoundedSemaphore: { ...LOCK, release: ['release', ([n]) => [n ?? 1]] },
  Condition: { ...LOCK, wait: ['wait', ([t]) => [toSeconds(t)]], notify: ['notify', ([n]) => [n ?? 1]], notifyAll: ['notify_all', none] },
  Event: { isSet: ['is_set', none], set: ['set', none], clear: ['clear', none], wait: ['wait', ([t]) => [toSeconds(t)]] },
  Barrier: { wait: ['wait', ([t]) => [toSeconds(t)]], abort: ['abort', none], reset: ['reset', none] },
  dict: {
    get: ['get', ([k, f]) => [k, f ?? null]],
    getitem: ['__getitem__', same],
    set: ['__setitem__', same],
    delete: ['__delitem__', same],
    has: ['__contains__', same],
    keys: ['keys', none],
    values: ['values', none],
    items: ['items', none],
    len: ['__len__', none],
    clear: ['clear', none],
    pop: ['pop', (a) => (a[1] === undefined ? [a[0]] : a.slice(0, 2))],
    popitem: ['popitem', none],
    setdefault: ['setdefault', ([k, v]) => [k, v ?? null]],
    update: ['update', ([o]) => [o]],
    copy: ['copy', none],
  },
  list: {
    get: ['__getitem__', same],
    set: ['__setitem__', same],
    append: ['append', same],
    extend: ['extend', same],
    insert: ['insert', same],
    pop: ['pop', (a) => (a[0] === undefined ? [] : [a[0]])],
    remove: ['remove', same],
    index: ['index', same],
    count: ['count', same],
    reverse: ['reverse', none],
    // Python's sort takes reverse by keyword only (sort(True) is a TypeError there).
    sort: ['sort', none, ([reverse]) => (reverse === undefined ? {} : { reverse })],
    len: ['__len__', none],
    slice: ['__getitem__', ([s, e]) => [new PyObject('builtins', 'slice', [s ?? null, e ?? null, null])]],
    toArray: ['#GETVALUE', none],
    clear: ['__delitem__', () => [new PyObject('builtins', 'slice', [null, null, null])]],
  },
  Namespace: { getattr: ['__getattribute__', same], setattr: ['__setattr__', same], delattr: ['__delattr__', same] },
}
const PROPERTIES: Record<string, Record<string, Translation>> = {
  Barrier: { parties: ['__getattribute__', () => ['parties']], nWaiting: ['__getattribute__', () => ['n_waiting']], broken: ['__getattribute__', () => ['broken']] },
  Value: { value: ['get', none] },
}

/** Waits that Python cannot cancel and that take nothing when repeated: sliced under a signal. */
const SLICED: Record<string, [block: number | null, timeout: number]> = {
  get: [0, 1],
  put: [1, 2],
  acquire: [0, 1],
  wait: [null, 0],
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/**
 * Decrefs of collected proxies, sent one after another: a collection frees proxies by the
 * hundred at once, and a connection each, all together, would run out of fds here and threads
 * in Python's server (Python's own finalizers run one at a time).
 */
let decrefs: Promise<void> = Promise.resolve()
/**
 * Managers a decref could not reach: the decrefs queued behind it are dropped (their objects went
 * with the manager, or it is unreachable, and each would wait out the handshake's retries, 30 s,
 * holding this process open), until an object is made there again.
 */
const unreachable = new Set<string>()

/** Python's objects are collected with their proxies here: a decref on a connection of its own, as Python's finalizer does. */
const collected = new FinalizationRegistry<{ address: Address; authkey: string | null; id: unknown; pinned: { conn?: PinnedConn } }>((s) => {
  s.pinned.conn?.close()
  const k = keyOf(s.address)
  decrefs = decrefs.then(async () => {
    if (unreachable.has(k)) return
    try {
      await coroPyDispatch(s.address, s.authkey, 'decref', [s.id])
    } catch (error) {
      if (error instanceof OSError || error instanceof EOFError) unreachable.add(k)
    }
  })
})

/** The core of a proxy of a Python manager's object: the library's proxy classes call it as their own. */
export class PyProxyCore extends ProxyCore {
  constructor(
    state: ProxyState,
    /** Python's id of the object (a str of hex digits). */
    readonly ident: unknown,
    readonly exposed: readonly string[],
  ) {
    super(state)
    collected.register(this, { address: state.address, authkey: state.authkey, id: ident, pinned: this.pinned })
  }

  /** This thread's connection for an owned type (OWNED), opened on first use; closed when the proxy is collected. */
  private readonly pinned: { conn?: PinnedConn } = {}
  /** An awaited opening of it under way, which other awaited calls share. */
  private opening: Promise<PinnedConn> | undefined
  private pinnedConn(): PinnedConn | undefined {
    if (!OWNED.has(this.state.typeid)) return undefined
    return (this.pinned.conn ??= PinnedConn.open(this.state.address, this.state.authkey))
  }

  private async coroPinnedConn(): Promise<PinnedConn> {
    if (this.pinned.conn) return this.pinned.conn
    this.opening ??= PinnedConn.coroOpen(this.state.address, this.state.authkey).finally(() => (this.opening = undefined))
    const c = await this.opening
    // A blocking call may have opened one meanwhile: the first stays, so that the owner is one.
    if (this.pinned.conn && this.pinned.conn !== c) {
      c.close()
      return this.pinned.conn
    }
    return (this.pinned.conn = c)
  }

  /** An awaited call on the pinned connection; a failed connection is dropped (the next call opens another). */
  private async onPinned(c: PinnedConn, request: PyTuple, method: string): Promise<unknown> {
    try {
      return this.result(await c.requestAsync(request), method)
    } catch (error) {
      if (error instanceof OSError || error instanceof EOFError) this.dropPinned(c)
      throw error
    }
  }

  private dropPinned(c: PinnedConn): void {
    c.close()
    if (this.pinned.conn === c) this.pinned.conn = undefined
  }

  /** What a call is in Python: its method name, arguments and keyword arguments. */
  private translate(method: string, args: unknown[]): [string, unknown[], Record<string, unknown>?] {
    const { typeid } = this.state
    if (method === '__get__' || method === '__set__') {
      const name = String(args[0])
      if (typeid === 'Value' && name === 'value') return method === '__get__' ? ['get', []] : ['set', [args[1]]]
      const p = PROPERTIES[typeid]?.[name]
      if (!p || method === '__set__') throw new NotImplementedError(`'${name}' of a Python manager's ${typeid} is not reachable from Node`)
      return [p[0], p[1]([])]
    }
    const table = TRANSLATIONS[typeid]
    if (table) {
      const t = table[method]
      if (!t) throw new NotImplementedError(`${method}() of a Python manager's ${typeid}: Python's proxy does not expose it`)
      return [t[0], t[1](args), t[2]?.(args)]
    }
    // A registered type (AutoProxy): the referent's method by its Python name, arguments as given.
    const python = snake(method)
    if (this.exposed.length && !this.exposed.includes(python) && !this.exposed.includes(method)) {
      throw new NotImplementedError(`'${method}' is not exposed by the Python manager's '${typeid}' (it exposes ${this.exposed.join(', ')})`)
    }
    return [this.exposed.includes(method) ? method : python, args]
  }

  override reduce(): ProxyState {
    throw new NotImplementedError("a proxy of a Python manager's object cannot be sent to another thread or process: connect there to the manager")
  }

  override call(method: string, args: unknown[]): unknown {
    const [name, pyArgs, kwds = {}] = this.translate(method, args)
    const a = this.state.address
    const pinned = this.pinnedConn()
    if (pinned) {
      try {
        return this.result(pinned.request(tuple(this.ident, name, tuple(...pyArgs), kwds)), method)
      } catch (error) {
        if (error instanceof OSError || error instanceof EOFError) this.dropPinned(pinned)
        throw error
      }
    }
    const c = takeSync(a, this.state.authkey)
    let ok = false
    try {
      const r = c.request(tuple(this.ident, name, tuple(...pyArgs), kwds))
      ok = true
      return this.result(r, method)
    } finally {
      if (ok) giveBack(a, c)
      else c.close()
    }
  }

  override coro_call(method: string, args: unknown[], signal?: AbortSignal): Promise<unknown> {
    return signal ? this.guarded(method, args, signal) : OWNED.has(this.state.typeid) ? this.once(method, args, undefined) : this.quick(method, args)
  }

  /**
   * An awaited call without a signal on an idle connection: no async layers between the caller
   * and the socket (each would cost a turn of the microtask queue per call).
   */
  private quick(method: string, args: unknown[]): Promise<unknown> {
    const a = this.state.address
    const c = idleLoop.get(keyOf(a))?.pop()
    if (!c) return this.once(method, args, undefined)
    let request: PyTuple
    try {
      const [name, pyArgs, kwds = {}] = this.translate(method, args)
      request = tuple(this.ident, name, tuple(...pyArgs), kwds)
    } catch (error) {
      giveBack(a, c)
      return Promise.reject(error)
    }
    return c.request(request).then(
      (r) => {
        giveBack(a, c)
        return this.result(r, method)
      },
      (error: unknown) => {
        c.close()
        throw error
      },
    )
  }

  private async guarded(method: string, args: unknown[], signal: AbortSignal): Promise<unknown> {
    signal.throwIfAborted()
    const slice = SLICED[method]
    // Not a Barrier's wait: Python breaks a barrier whose wait times out, so a slice that ran out
    // broke it for every party (its abort drops the connection instead, see once()).
    if (!slice || !(this.state.typeid in TRANSLATIONS) || this.state.typeid === 'Barrier') return this.once(method, args, signal)
    // Sliced: a bounded wait, again and again, until it succeeds, its own timeout passes, or the signal fires.
    const [blockAt, timeoutAt] = slice
    if (blockAt !== null && args[blockAt] === false) return this.once(method, args, signal)
    const total = args[timeoutAt] === null || args[timeoutAt] === undefined ? Infinity : Math.max(0, Number(args[timeoutAt]))
    const deadline = performance.now() + total
    for (;;) {
      const left = deadline - performance.now()
      const part = [...args]
      part[timeoutAt] = Math.max(0, Math.min(SLICE_MS, left))
      let r: unknown
      try {
        r = await this.once(method, part, undefined)
      } catch (error) {
        // A slice that ran out: Empty (get), Full (put). Anything else is the answer.
        if (!(error instanceof Empty || error instanceof Full) || left <= SLICE_MS) throw error
        signal.throwIfAborted()
        continue
      }
      // acquire and wait say false when their slice ran out.
      if (r !== false || left <= SLICE_MS) return r
      signal.throwIfAborted()
    }
  }

  private async once(method: string, args: unknown[], signal: AbortSignal | undefined): Promise<unknown> {
    const [name, pyArgs, kwds = {}] = this.translate(method, args)
    const a = this.state.address
    // Its waits are sliced (acquire, wait): an abort is seen between slices, never by dropping the owner's connection.
    if (OWNED.has(this.state.typeid)) return this.onPinned(await this.coroPinnedConn(), tuple(this.ident, name, tuple(...pyArgs), kwds), method)
    const c = idleLoop.get(keyOf(a))?.pop() ?? (await takeAsync(a, this.state.authkey))
    let ok = false
    // A wait that cannot be sliced (a Barrier's, a join) and is aborted: its connection is dropped
    // (Python's thread for it goes on waiting and takes nothing), and the abort is what the caller sees.
    const onAbort = (): void => c.close()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const r = await c.request(tuple(this.ident, name, tuple(...pyArgs), kwds))
      ok = true
      return this.result(r, method)
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      throw error
    } finally {
      signal?.removeEventListener('abort', onAbort)
      if (ok && !signal?.aborted) giveBack(a, c)
      else c.close()
    }
  }

  private result(msg: unknown, method: string): unknown {
    const v = answer(msg, this.state.address)
    if (v instanceof ProxyAnswer) return this.proxyOf(v.result)
    // Python's Namespace comes back whole from #GETVALUE; the library's names() wants its keys.
    if (method === 'names') return v instanceof PyObject ? Object.keys((v.state as object) ?? {}) : v
    return v
  }

  /** A '#PROXY' answer (exposed, token): a proxy of another object of the same manager. */
  private proxyOf(result: unknown): unknown {
    const [exposed, token] = result as [string[], PyObject]
    const [typeid, , id] = token.state as [string, unknown, unknown]
    // Python's client takes its own reference, then drops the one the server made for the answer.
    const core = new PyProxyCore({ ...this.state, typeid: String(typeid), id: 0 }, id, exposed)
    pyDispatch(this.state.address, this.state.authkey, 'incref', [id])
    pyDispatch(this.state.address, this.state.authkey, 'decref', [id])
    return wrapPy(core)
  }

  override describe(): string {
    try {
      return String(this.call('__str__', []))
    } catch {
      return `typeid='${this.state.typeid}' of a Python manager at ${keyOf(this.state.address)}`
    }
  }
}

// names(), hasattr() of a Namespace, __str__ of any: calls the tables above do not hold.
TRANSLATIONS.Namespace.names = ['#GETVALUE', none]
for (const t of Object.values(TRANSLATIONS)) t.__str__ = ['__str__', none]

/** The proxy class the library has for the typeid, or AutoProxy for a registered type. */
function wrapPy(core: PyProxyCore): unknown {
  const proxy = wrapProxy(core) as object
  if (core.state.typeid === 'Namespace') patchHasattr(proxy, core)
  return proxy
}

/** A Namespace's hasattr: Python's proxy has no such call; a getattr that raises AttributeError says no. */
function patchHasattr(proxy: object, core: PyProxyCore): void {
  const has = (name: string): boolean => {
    try {
      core.call('getattr', [name])
      return true
    } catch (error) {
      if (error instanceof RemoteError && error.pythonType === 'AttributeError') return false
      throw error
    }
  }
  Object.defineProperty(proxy, 'hasattr', { value: has })
  Object.defineProperty(proxy, 'coro_hasattr', { value: async (name: string) => has(name) })
}

/** create()'s arguments as Python's SyncManager takes them, per typeid. */
function createArgs(typeid: string, args: unknown[]): [unknown[], Record<string, unknown>] {
  switch (typeid) {
    case 'Value':
      return [[args[0], args[1] ?? 0], {}]
    case 'Barrier':
      if (args[1] !== undefined && args[1] !== null) throw new NotImplementedError("a Barrier action cannot run on a Python manager (it would be Node code in Python's process)")
      return [[args[0], null, toSeconds(args[2])], {}]
    case 'Condition':
      if (args[0] !== undefined) throw new NotImplementedError("Condition(lock) on a Python manager: pass no lock (Python's proxy of a lock cannot be made from Node)")
      return [[], {}]
    case 'Namespace':
      return [[], (args[0] as Record<string, unknown>) ?? {}]
    case 'dict':
    case 'list':
      return [args[0] === undefined ? [] : [args[0]], {}]
    case 'Array':
    case 'Pipe':
      throw new NotImplementedError(`${typeid} of a Python manager is not reachable from Node; use a list, or a Queue`)
    default:
      return [args.filter((a) => a !== undefined), {}]
  }
}

/** A new object on a Python manager: its proxy (the library's class for the typeid, AutoProxy for a registered one). */
export function pyCreate(a: Address, authkey: string | null, typeid: string, args: unknown[]): unknown {
  const [pyArgs, kwds] = createArgs(typeid, args)
  return made(a, authkey, typeid, pyDispatch(a, authkey, 'create', [typeid, ...pyArgs], kwds))
}

export async function coroPyCreate(a: Address, authkey: string | null, typeid: string, args: unknown[]): Promise<unknown> {
  const [pyArgs, kwds] = createArgs(typeid, args)
  return made(a, authkey, typeid, await coroPyDispatch(a, authkey, 'create', [typeid, ...pyArgs], kwds))
}

function made(a: Address, authkey: string | null, typeid: string, r: unknown): unknown {
  const [ident, exposed] = r as [unknown, string[] | null]
  unreachable.delete(keyOf(a))
  // The server counted one reference for this proxy (Python's create() increfs once).
  return wrapPy(new PyProxyCore({ address: a, authkey, id: 0, typeid: asLibraryType(typeid, exposed ?? []) }, ident, exposed ?? []))
}

/**
 * A registered getter (`BaseManager.register('get_jobs', ...)`) of a queue is a queue: it gets the
 * library's proxy when its exposed methods are a queue's, a lock's, a condition's or an event's
 * (so milliseconds become seconds as for the library's own); any other, AutoProxy.
 */
function asLibraryType(typeid: string, exposed: readonly string[]): string {
  if (typeid in TRANSLATIONS) return typeid
  const has = (...names: string[]) => names.every((n) => exposed.includes(n))
  if (has('put', 'get', 'qsize', 'task_done', 'join')) return 'JoinableQueue'
  if (has('put', 'get', 'qsize')) return 'Queue'
  if (has('acquire', 'release', 'wait', 'notify', 'notify_all')) return 'Condition'
  if (has('acquire', 'release')) return 'Lock'
  if (has('is_set', 'set', 'clear', 'wait')) return 'Event'
  return typeid
}

/** Drops this thread's idle connections to a manager (shutdown, or a manager that went away). */
export function dropPyConnections(a: Address): void {
  for (const pools of [idleSync, idleLoop] as Map<string, Conn[]>[]) {
    for (const c of pools.get(keyOf(a)) ?? []) c.close()
    pools.delete(keyOf(a))
  }
}
