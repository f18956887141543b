// The manager server (Python's multiprocessing.managers.Server): hosts objects and runs the calls
// that proxies send it. It serves the spawn context's primitives (in a thread of the parent) and
// every AioManager (in a process of its own, or in serveForever()).
//
// Wire: each client connection (AioClient with the authkey handshake) carries requests
// `[callId, op, ...]` and answers `[callId, ok, value]`, in the library's serializer. Calls run
// concurrently, each as the awaitable (coro_) form of the method, so a waiting acquire or get
// never stalls the server; a CANCEL aborts one through its AbortSignal, and the library's rule for
// aborts holds: nothing is left acquired or taken, or the call had already finished and its
// answer stands.
//
// A client that disconnects has its pending calls aborted and the locks and semaphores it holds
// released, as many times as it acquired them: a killed client cannot wedge the others.

import * as net from 'node:net'
import { getEventListeners } from 'node:events'
import { isMainThread } from 'node:worker_threads'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { forgetAtExit, makeTempFolder, removeAtExit } from '../core/temp-folder.js'
import { join } from 'node:path'
import { decodeFromPeer, encode, encoded } from '../ipc/serialize.js'
import { FramedSocket, readNow, watchFor } from '../ipc/framed-socket.js'
import { MAX_MESSAGE_BYTES, framed, messageReader } from '../ipc/framing.js'
import type { Connection } from '../ipc/connection.js'
import { errorRecord, plainRecord, type ErrorRecord } from '../core/remote-error.js'
import { reduceFor, serverText } from '../core/destination.js'
import { compileFunction, loadFunction, type FunctionRef } from '../core/source.js'
import { helpersFor } from '../core/compiler-helpers.js'
import { NotImplementedError, OSError, ValueError } from '../core/errors.js'
import { CORE, REDUCE, collectingUnloaded, unloadedError, type ClassNotLoadedError } from '../core/transfer.js'
import { HOSTED, mapTree, type HostedType } from './manager-types.js'
import { ProxyCore, releaseUnloaded, wrapProxy } from './proxy.js'
import { SERVER_ITSELF, OP_ACK, OP_ADOPT, OP_CALL, OP_CANCEL, OP_CREATE, OP_DECREF, OP_DESCRIBE, OP_GONE, OP_HELLO, OP_INCREF, OP_PUBLISH, OP_PUT_BACK, OP_SHUTDOWN, OP_SYNC, isLocalServer, setLocalServer, type Answer, type ProxyState, type Request } from './protocol.js'
import { pipeEnds } from '../ipc/connection.js'
import { looksLikePickle } from '../ipc/pickle.js'
import { PyConnection, type PyHost } from './py-server.js'


/** How long an object whose references reached 0 stays, for a reference sent on meanwhile. */
const DROP_GRACE_MS = 1000


/**
 * A client: one thread of one process. It may use two connections (one for blocking calls, pumped
 * by its I/O thread, one for awaitable calls, in its own event loop); both carry its key, so that
 * it owns RLocks and Conditions as one, and its locks are released when its last connection goes.
 */
interface Owner {
  held: Map<number, number>
  /** References its proxies hold (created, adopted), dropped when its last connection goes. */
  refs: Map<number, number>
  connections: number
  /** The calls of its closed connections, settling (an aborted wait may still re-take a lock). */
  settling?: Promise<unknown>[]
  /** A process's, counted for it by its starter before it connected: the starter's client key (see clientGone). */
  startedBy?: string
}

export interface ServerOptions {
  address: string | [string, number]
  authkey: string | null
  /** User classes: typeid → `{ module, name }` of a class to construct (or a function to call). */
  registry?: Record<string, FunctionRef>
  /** A server process that ends with its parent (start()); not for one that serves others (serveForever()). */
  exitWithParent?: boolean
  /** How long a connection has for its authkey handshake before it is dropped (ms). */
  handshakeTimeout?: number
  /** Serve fast lanes from a worker thread: set where Node does not track the thread's fds (ProcessData.untrackedFds). */
  lanes?: boolean
  /** A file to write the address to once listening (JSON; the real port for port 0): AioManager.start() reads it. */
  addressFile?: string
}

interface Hosted {
  typeid: string
  obj: unknown
  type: HostedType
  /**
   * Proxies of it alive anywhere, counted as Python's manager does: one per proxy create() made,
   * one more each time a proxy is sent on (OP_INCREF by the sender, before the receiver can drop
   * its copy) or handed out in a result; one less when a proxy is collected (OP_DECREF) or its
   * client's last connection ends. At 0 the object is dropped. Undefined: not counted (an object
   * that only a result handed out before references were counted).
   */
  refs?: number
  /** References sent on and not yet claimed by the client that rebuilt the proxy (OP_ADOPT). */
  unowned: number
  /** Records rebuilt here (release) before their sender's OP_INCREF came: that many INCREFs count nothing. */
  owed?: number
  /** A drop scheduled at refs 0, cancelled by a reference arriving meanwhile. */
  dropping?: ReturnType<typeof setTimeout>
  /**
   * Made for a Python client (hostPython): counted by Python's incref/decref, which name no owner.
   * Only these take them, so that a Python client cannot free what a Node client holds.
   */
  python?: true
}

/** How many ended clients a server remembers (Server.goneKeys): far more than reports can be in flight. */
const GONE_KEYS_KEPT = 4096

/** The most connections a server keeps in their handshake at once (see accept). */
const MAX_HANDSHAKING = 64

/**
 * The AbortControllers of calls, reused. Node 20 makes a controller's signal on the first read of
 * `.signal`, and that took ~3.5 µs here (the constructor alone ~20 ns): about half of what serving
 * a queue's put or get cost (a served call took ~9 µs, ~5 µs with reuse). Nearly every call ends with its signal unaborted and no listener left on it
 * (a wait removes its own); only such a one is reused, so no wait of a finished call can hear a
 * later call's abort.
 */
const spareControllers: AbortController[] = []
const SPARE_CONTROLLERS = 64

function callController(): AbortController {
  return spareControllers.pop() ?? new AbortController()
}

function callEnded(controller: AbortController): void {
  if (spareControllers.length < SPARE_CONTROLLERS && !controller.signal.aborted && getEventListeners(controller.signal, 'abort').length === 0) spareControllers.push(controller)
}

/** Where a connection's answers go and how it is cut: a socket's framing, or a client's fast lane. */
interface Wire {
  send(bytes: Uint8Array): void
  abort(error: Error): void
  /** Looks for the next request on turns of the loop until `answered()` (framed-socket.ts watchFor). */
  watchFor(answered: () => boolean): void
}

/** One client connection: framed messages in our serializer over a socket of this thread (or a fast lane, sync-pipe.ts). */
class ClientConn {
  readonly pending = new Map<number, AbortController>()
  /** Answers that took something (a queue's get) and are not acknowledged yet: how to put each back. */
  readonly unacked = new Map<number, () => Promise<void>>()
  /** Calls still running, so that a disconnect releases locks only after they have settled. */
  readonly running = new Set<Promise<void>>()
  owner: Owner = { held: new Map(), refs: new Map(), connections: 1 }
  key: string | undefined
  closed = false
  channel!: Wire
  /** The fast lane this connection opened for its client's blocking calls (OP_SYNC): it ends with it. */
  lane: ClientConn | undefined
  /** Set by the first message: a Python client (pickles, py-server.ts), or undefined for the library's own. */
  python: PyConnection | undefined
  firstSeen = false
  /** A client connected over a socket of this server's (not a lane): what it has sent tells a silent peer. */
  socket: net.Socket | undefined
  /** Requests received that are answered: a watch for the next request ends when it moves. */
  received = 0

  /** `server`: the server's address and authkey as one string (core/destination.ts serverText), as its proxies carry them (send). */
  constructor(private readonly server: string) {}

  send(msg: Answer): void {
    if (this.closed) return
    // The proxies of this server's objects in an answer are counted for this client
    // (core/destination.ts), which owns them at once: one that dies before it has taken them up
    // releases them with its connections. As references waiting for the client's OP_ADOPT, they
    // stayed for ever (a pipe's ends, its maker killed right after AioPipe()).
    const n = this.key === undefined ? encode(msg, 'result') : reduceFor(this.key, () => encode(msg, 'result'), undefined, this.server).value
    // The client takes a longer frame for a broken connection, and every call on it fails: this
    // one fails alone (the caller's send has the same limit, proxy.ts).
    if (n > MAX_MESSAGE_BYTES) throw new ValueError(`it encodes to ${n} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit of a frame (pass large data through a queue or a pipe in parts)`)
    this.channel.send(encoded().subarray(0, n))
    // A client in a loop sends its next request within µs: looked for before the loop would wake for it.
    const seen = this.received
    this.channel.watchFor(() => this.received !== seen || this.closed)
  }
}

export class Server implements PyHost {
  readonly objects = new Map<number, Hosted>()
  /** The id of each hosted object, to send one back as a proxy without a search. */
  private readonly ids = new WeakMap<object, number>()
  /** What each object this server made or took is, kept after its id goes: it may live on in another object (a dict in a dict). */
  private readonly kinds = new WeakMap<object, { typeid: string; type: HostedType }>()
  private nextId = 1
  /** Objects of this server's kept in a queue's items or a pipe's messages, by token (keepIn). */
  private readonly kept = new Map<string, object>()
  private readonly keptPrefix = `\u0000aioprocessing-kept-${randomBytes(12).toString('hex')}:`
  private nextKept = 1
  /** Whether any object hosted here lives by identity (keepIn has work only then). */
  private keepsByIdentity = false
  private readonly net: net.Server
  address: ProxyState['address']
  private stopping = false
  /** The private folder of the fast lanes' FIFOs, made on first use. */
  private laneDir: string | undefined
  private nextLane = 1
  /** Lanes whose FIFO names still exist (the client has not opened both ends yet). */
  private lanesOpening = 0
  private readonly clients = new Set<ClientConn>()
  private readonly owners = new Map<string, Owner>()
  /** Clients reported ended (OP_GONE), the latest GONE_KEYS_KEPT: a reference counted for one later counts nothing. */
  private readonly goneKeys = new Set<string>()
  private readonly userTypes = new Map<string, FunctionRef>()
  /** Typeids given to existing objects (publish()): create(name) gives that object. */
  private readonly published = new Map<string, number>()
  private readonly key: Buffer | null
  /** Connections not past their handshake yet, oldest first. */
  private readonly handshaking = new Set<ClientConn>()
  private stopped!: () => void
  readonly done = new Promise<void>((resolve) => (this.stopped = resolve))

  constructor(readonly options: ServerOptions) {
    this.key = options.authkey === null ? null : Buffer.from(options.authkey, 'hex')
    this.address = options.address
    for (const [typeid, ref] of Object.entries(options.registry ?? {})) this.userTypes.set(typeid, ref)
    // Sockets of this thread, not the I/O thread's rings: a call costs no hop between threads here.
    this.net = net.createServer({ noDelay: true }, (socket) => this.accept(socket))
    this.net.on('close', () => this.stopped())
    setLocalServer(this)
  }

  /** Binds and listens; the address then has the real port (for port 0). */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject)
      const a = this.options.address
      if (typeof a === 'string') this.net.listen({ path: a, backlog: 511 }, resolve)
      else this.net.listen({ host: a[0], port: a[1], backlog: 511 }, resolve)
    })
    const bound = this.net.address()
    if (bound && typeof bound === 'object') this.address = [(this.options.address as [string, number])[0], bound.port]
  }

  /** This server as its proxies name it. */
  private own(): string {
    return serverText({ address: this.address, authkey: this.options.authkey })
  }

  /** Runs the handshake (when there is an authkey), then serves the client's requests. */
  private accept(socket: net.Socket): void {
    const client = new ClientConn(this.own())
    // A wrong authkey, a broken handshake or a bad frame ends that connection (FramedSocket reads
    // nothing more it sent), and the server goes on.
    const channel = new FramedSocket(socket, {
      role: 'server',
      authkey: this.key,
      // Only when asked: a client of this library handshakes on its event loop, which its own
      // blocking calls may hold for as long as they wait; a deadline would drop it as if silent.
      handshakeMs: this.options.handshakeTimeout,
      ready: () => this.handshaking.delete(client),
      message: (bytes) => this.received(client, bytes, channel),
      ended: () => {},
      closed: () => {
        this.handshaking.delete(client)
        this.gone(client)
      },
      backlog: () => client.python?.backlog(),
    })
    client.channel = channel
    client.socket = socket
    this.clients.add(client)
    // Peers that connect and say nothing hold an fd each: past MAX_HANDSHAKING of them at once, the
    // one waiting longest is dropped (as sshd's MaxStartups), so they cannot use up the server's
    // fds; one that has said nothing yet before one that answered (a client midway through its
    // handshake): silent peers that reconnect at once when dropped evicted real clients midway.
    this.handshaking.add(client)
    if (this.handshaking.size > MAX_HANDSHAKING) {
      let victim: ClientConn | undefined
      for (const c of this.handshaking) {
        if (c !== client && c.socket?.bytesRead === 0) {
          victim = c
          break
        }
      }
      victim ??= this.handshaking.values().next().value!
      this.handshaking.delete(victim)
      victim.channel.abort(new OSError(`more than ${MAX_HANDSHAKING} connections were in their handshake at once: the longest silent was dropped`))
    }
  }

  private received(client: ClientConn, bytes: Buffer, socket?: FramedSocket): void {
    if (!client.firstSeen) {
      client.firstSeen = true
      // One address serves both: the library's messages start with a small tag, a pickle with PROTO.
      if (socket && looksLikePickle(bytes)) {
        const controller = new AbortController()
        client.pending.set(-1, controller)
        client.python = new PyConnection(this, { send: (b) => void socket.send(b, true), drain: () => socket.drain() }, client.owner, controller.signal)
      }
    }
    if (client.python) {
      client.received++
      return client.python.received(bytes)
    }
    let msg: Request
    let unloaded: ClassNotLoadedError[]
    try {
      ;({ value: msg, unloaded } = collectingUnloaded(() => decodeFromPeer(bytes) as Request))
      if (!Array.isArray(msg)) throw new OSError(`a request is an array, not ${typeof msg}`)
      // Its answer repeats the call id: one that could not be sent back (an array 1,200 deep, an
      // object whose prototype a peer chose) broke the answer and then the error answer too.
      if (!Number.isSafeInteger(msg[0]) || !Number.isSafeInteger(msg[1])) throw new OSError('a request starts with two integers, its call id and its operation')
    } catch (error) {
      client.channel.abort(error as Error)
      return
    }
    if (unloaded.length) {
      // An object of a class this server has not loaded (a proxy class of a user's own): that call
      // fails and does not run, the connection goes on (the objects it did rebuild are dropped,
      // and so are the references the others carried).
      releaseUnloaded(unloaded)
      if (msg[1] === OP_CALL || msg[1] === OP_CREATE) client.send([msg[0], false, errorRecord(unloadedError(unloaded, 'the call did not run on the manager'))])
      return
    }
    // Only a request that is answered ends the watch for the next one (ClientConn.send): an
    // acknowledgement comes between an awaited get's answer and the client's next request, which
    // would then wake this thread from its sleep (~25 µs here, paid in the client's write).
    if (msg[1] !== OP_CANCEL && msg[1] !== OP_DECREF && msg[1] !== OP_INCREF && msg[1] !== OP_ADOPT && msg[1] !== OP_ACK && msg[1] !== OP_PUT_BACK && msg[1] !== OP_GONE) client.received++
    if (msg[1] === OP_CANCEL) client.pending.get(msg[2])?.abort(new Error('cancelled by the client'))
    else if (msg[1] === OP_PUT_BACK) this.putBackNow(client, msg[2])
    else if (msg[1] === OP_DECREF) this.decref(msg[2], client.owner)
    else if (msg[1] === OP_INCREF) this.incref(msg[2], typeof msg[3] === 'string' ? msg[3] : undefined, client.key)
    else if (msg[1] === OP_GONE) this.clientGone(String(msg[2]))
    else if (msg[1] === OP_ADOPT) this.adopt(msg[2], client.owner)
    else if (msg[1] === OP_ACK) client.unacked.delete(msg[2])
    else if (msg[1] === OP_HELLO) this.hello(client, String(msg[2]))
    else {
      const call = this.run(client, msg)
      client.running.add(call)
      void call.finally(() => client.running.delete(call))
    }
  }

  /** The client could not take what call `id` took (its answer held a class it has not loaded): it goes back now. */
  private putBackNow(client: ClientConn, id: number): void {
    const putBack = client.unacked.get(id)
    client.unacked.delete(id)
    void putBack?.().catch(() => {})
  }

  /** The connection's first message: which client it belongs to. */
  private hello(client: ClientConn, key: string): void {
    let owner = this.owners.get(key)
    if (owner) owner.connections++
    else this.owners.set(key, (owner = { held: new Map(), refs: new Map(), connections: 1 }))
    client.owner = owner
    client.key = key
  }

  /** A connection went away (closed, crashed or killed): drop its waits; with the client's last, release what it held. */
  private gone(client: ClientConn): void {
    if (client.closed) return
    // A client's fast lane ends with the connection that opened it (the lane sees no end of its own).
    if (client.lane) client.lane.channel.abort(new OSError('the client disconnected'))
    client.closed = true
    this.clients.delete(client)
    for (const c of client.pending.values()) c.abort(new Error('the client disconnected'))
    // Taken for it, never acknowledged: it died before its call returned, so the item goes back.
    for (const putBack of client.unacked.values()) void putBack().catch(() => {})
    client.unacked.clear()
    const owner = client.owner
    // An aborted Condition.wait takes its lock back before it settles: release after that, on
    // whichever of the client's connections it ran.
    ;(owner.settling ??= []).push(Promise.allSettled(client.running))
    if (--owner.connections > 0) return
    if (client.key !== undefined) this.owners.delete(client.key)
    this.releaseOwner(owner)
  }

  /** A client without connections: its locks and its proxies' references go (once its last calls settled). */
  private releaseOwner(owner: Owner): void {
    void Promise.all(owner.settling ?? []).then(() => {
      this.releaseHeld(owner)
      // Its proxies died with it.
      for (const [id, n] of [...owner.refs]) for (let i = 0; i < n; i++) this.decref(id, owner)
    })
  }

  /**
   * Client `key`, a process, has ended (its supervisor says so: ipc/gone.ts). One that never
   * connected (killed before it loaded) held the references its arguments were counted for
   * (incref's `to`) with no connection whose end would release them: they go now. One still
   * connected here is released when those connections end, as any client.
   */
  private clientGone(key: string): void {
    if (this.goneKeys.has(key)) return
    this.goneKeys.add(key)
    if (this.goneKeys.size > GONE_KEYS_KEPT) this.goneKeys.delete(this.goneKeys.values().next().value!)
    // The processes it started and that never connected ended with it (a spawned process ends with
    // its parent, a thread with its process), and its supervisor, which would have said so, too.
    for (const [k, o] of [...this.owners]) if (o.startedBy === key && o.connections === 0) this.clientGone(k)
    const owner = this.owners.get(key)
    if (!owner || owner.connections > 0) return
    this.owners.delete(key)
    this.releaseOwner(owner)
  }

  private releaseHeld(owner: Owner): void {
    for (const [id, count] of owner.held) {
      const h = this.objects.get(id)
      for (let i = 0; i < count; i++) {
        try {
          h?.type.release?.(h.obj, owner)
        } catch {
          // already released by someone else
        }
      }
    }
    owner.held.clear()
  }

  private async run(client: ClientConn, msg: Request): Promise<void> {
    const callId = msg[0]
    const controller = callController()
    client.pending.set(callId, controller)
    let answer: Answer
    try {
      const value = await this.execute(client, msg, controller.signal)
      const putBack = this.putBackOf(msg, value)
      if (putBack) {
        if (client.closed) {
          // Gone while the call ran: nobody will have the item.
          void putBack().catch(() => {})
          return
        }
        client.unacked.set(callId, putBack)
        answer = [callId, true, value, true]
      } else answer = [callId, true, value]
    } catch (error) {
      answer = [callId, false, errorRecord(error)]
    } finally {
      client.pending.delete(callId)
      callEnded(controller)
    }
    try {
      client.send(answer)
    } catch (error) {
      // An answer that cannot be serialized is an error for the caller; what it took goes back.
      const putBack = client.unacked.get(callId)
      client.unacked.delete(callId)
      void putBack?.().catch(() => {})
      try {
        // A method's error whose fields the transport refuses after all goes with its plain fields.
        const record = answer[1] ? undefined : (answer[2] as ErrorRecord)
        try {
          if (!record?.isError) throw error
          client.send([callId, false, plainRecord(record)])
        } catch {
          client.send([callId, false, errorRecord(new TypeError(`the result cannot be sent back: ${(error as Error).message}`))])
        }
      } catch (again) {
        // Not even the error goes: this connection is broken, not the server.
        client.channel.abort(again as Error)
      }
    }
    if (msg[1] === OP_SHUTDOWN) this.stop()
  }

  /** For a call that took something (a queue's get): how to put it back; else undefined. */
  private putBackOf(msg: Request, value: unknown): (() => Promise<void>) | undefined {
    if (msg[1] !== OP_CALL) return undefined
    const h = this.objects.get(msg[2])
    return h?.type.putBack?.(h.obj, msg[3], value)
  }

  private async execute(client: ClientConn, msg: Request, signal: AbortSignal): Promise<unknown> {
    switch (msg[1]) {
      case OP_SYNC:
        return this.openLane(client)
      case OP_CREATE: {
        const [, , typeid, args] = msg
        return this.create(typeid, args, client.owner)
      }
      case OP_CALL: {
        const [, , id, method, args] = msg
        const h = this.objects.get(id)
        if (!h) throw new ValueError(`no object ${id} on this manager (it was never created here)`)
        if (!h.type.byValue) return this.returned(await h.type.call(h.obj, method, args, signal, client.owner, id), h.obj)
        const tokens: string[] = []
        let result: unknown
        try {
          result = await h.type.call(h.obj, method, this.keepIn(args, tokens), signal, client.owner, id)
        } catch (error) {
          // Nothing was stored (a full queue, a timeout): nothing to keep.
          for (const token of tokens) this.kept.delete(token)
          throw error
        }
        return this.returned(result, h.obj)
      }
      case OP_DESCRIBE: {
        // Object 0 is none: the server itself, which says whose process it is (start() asks).
        if (msg[2] === 0) return `${SERVER_ITSELF} ${process.pid}`
        const h = this.objects.get(msg[2])
        if (!h) throw new ValueError(`no object ${String(msg[2])} on this manager`)
        return String(h.obj)
      }
      case OP_PUBLISH:
        return this.publish(msg[2], msg[3])
      case OP_SHUTDOWN:
        return undefined
      default:
        throw new NotImplementedError(`unknown manager operation ${String(msg[1])}`)
    }
  }

  /** Hosts a new object and returns its proxy record. */
  private async create(typeid: string, given: unknown[], owner: Owner): Promise<unknown> {
    // A pipe is two objects: both ends are hosted, and their proxies go back.
    if (typeid === 'Pipe') return this.returned(pipeEnds(given[0] === undefined ? true : (given[0] as boolean)))
    const made = await this.make(typeid, given)
    return this.host(made.typeid, made.obj, made.type, owner)
  }

  /**
   * A new object of a typeid: the library's own, or a registered one (whose callable may return
   * one of the library's objects, served as that type). Not hosted yet.
   */
  async make(typeid: string, given: unknown[]): Promise<{ typeid: string; obj: unknown; type: HostedType }> {
    const shared = this.objects.get(this.published.get(typeid) ?? -1)
    if (shared) return { typeid: shared.typeid, obj: shared.obj, type: shared.type }
    const args = given.map((a) => {
      if (a === null || typeof a !== 'object' || !('__function__' in a)) return a
      const source = String((a as { __function__: string }).__function__)
      return compileFunction(source, helpersFor(source))
    })
    const type = HOSTED[typeid]
    if (type) return { typeid, obj: type.create(args), type }
    const ref = this.userTypes.get(typeid)
    if (!ref) throw new ValueError(`this manager has no type '${typeid}'; register it with register('${typeid}', { module, name })`)
    const make = await loadFunction(ref)
    // A generated proxy module registers its class as a hosted type when imported.
    if (HOSTED[typeid]) return { typeid, obj: HOSTED[typeid].create(args), type: HOSTED[typeid] }
    const obj = /^class\b/.test(Function.prototype.toString.call(make)) ? Reflect.construct(make, args) : await make(...args)
    // A callable that returns one of the library's objects (a shared queue) serves it as that type.
    const own = obj !== null && typeof obj === 'object' && CORE in obj ? (obj as object).constructor.name.replace(/^Aio/, '') : undefined
    if (own && HOSTED[own]) return { typeid: own, obj, type: HOSTED[own] }
    return { typeid, obj, type: userType(obj) }
  }

  /** publish(): `name` is now a typeid whose create() gives object `id`, which the name keeps alive. */
  private publish(name: unknown, id: unknown): undefined {
    if (typeof name !== 'string' || !/^[A-Za-z_]\w*$/.test(name)) throw new TypeError('name must be an identifier')
    if (HOSTED[name] || this.userTypes.has(name) || name === 'Pipe') throw new ValueError(`'${name}' is a type of this manager already: publish under another name`)
    const h = this.objects.get(Number(id))
    if (!h) throw new ValueError(`no object ${String(id)} on this manager to publish`)
    const before = this.published.get(name)
    if (before === Number(id)) return undefined
    h.refs = (h.refs ?? 0) + 1
    if (h.dropping) clearTimeout(h.dropping)
    h.dropping = undefined
    this.published.set(name, Number(id))
    if (before !== undefined) this.dropUncharged(before)
    return undefined
  }

  /** A created object: its one proxy is counted, owned by the creating client. */
  private host(typeid: string, obj: unknown, type: HostedType, owner?: Owner): unknown {
    const id = this.hostId(typeid, obj, type)
    this.objects.get(id)!.refs = 1
    if (owner) owner.refs.set(id, (owner.refs.get(id) ?? 0) + 1)
    return { __proxy__: true, typeid, id }
  }

  /**
   * A proxy of one of this server's objects was sent on (reduced in this thread, or OP_INCREF): a
   * reference owned by nobody until its receiver adopts it, or by client `to` (a process whose
   * arguments held it: core/destination.ts), whose end releases it.
   */
  incref(id: number, to?: string, by?: string): void {
    const h = this.objects.get(id)
    if (h?.refs === undefined) return
    if (to !== undefined) {
      // Its process, or the one that started it, ended before this came (another connection's
      // OP_GONE was faster): nobody has it.
      if (this.goneKeys.has(to) || (by !== undefined && this.goneKeys.has(by))) return
      let owner = this.owners.get(to)
      if (!owner) this.owners.set(to, (owner = { held: new Map(), refs: new Map(), connections: 0, startedBy: by }))
      owner.refs.set(id, (owner.refs.get(id) ?? 0) + 1)
    } else {
      if (h.owed) return void h.owed--
      h.unowned++
    }
    h.refs++
    if (h.dropping) clearTimeout(h.dropping)
    h.dropping = undefined
  }

  /**
   * A proxy record of this server's object came in a request and was rebuilt here as the object
   * itself (protocol.ts localReferent): no client takes over the reference it carried, so it goes.
   * Its sender's OP_INCREF may come later, on another connection (a blocking call's lane passes
   * the socket): then that INCREF counts nothing.
   */
  release(id: number): void {
    const h = this.objects.get(id)
    if (h?.refs === undefined) return
    if (h.unowned === 0) {
      h.owed = (h.owed ?? 0) + 1
      return
    }
    h.unowned--
    if (--h.refs === 0) this.dropLater(id, h)
  }

  private adopt(id: number, owner: Owner): void {
    const h = this.objects.get(id)
    if (!h || h.unowned === 0) return // its OP_INCREF is still on the way: that reference stays unowned
    h.unowned--
    owner.refs.set(id, (owner.refs.get(id) ?? 0) + 1)
  }

  private decref(id: number, owner: Owner | undefined): void {
    const h = this.objects.get(id)
    if (h?.refs === undefined) return
    const mine = owner?.refs.get(id) ?? 0
    if (mine > 1) owner!.refs.set(id, mine - 1)
    else if (mine === 1) owner!.refs.delete(id)
    else if (h.unowned > 0 && owner) h.unowned--
    else return // a reference never counted (its sender died before its OP_INCREF left)
    if (--h.refs > 0) return
    this.dropLater(id, h)
  }

  /** A reference sent on may still be on its way from a sender's other connection: drop a moment later. */
  private dropLater(id: number, h: Hosted): void {
    h.dropping = setTimeout(() => {
      if (h.refs! > 0 || this.objects.get(id) !== h) return
      this.objects.delete(id)
      if (h.obj !== null && typeof h.obj === 'object') this.ids.delete(h.obj)
      // A pipe end whose every holder closed its handle or is gone closes: its peer reads EOF, as
      // when the last fd of a pipe's end is closed (proxy.ts closeHandleOnly).
      if (h.typeid === 'Connection') (h.obj as Connection).close()
    }, DROP_GRACE_MS)
    h.dropping.unref()
  }

  private hostId(typeid: string, obj: unknown, type: HostedType): number {
    const id = this.nextId++
    this.objects.set(id, { typeid, obj, type, unowned: 0 })
    if (obj !== null && typeof obj === 'object') {
      this.ids.set(obj, id)
      this.kinds.set(obj, { typeid, type })
      if (!(REDUCE in obj && CORE in obj)) this.keepsByIdentity = true
    }
    return id
  }

  /**
   * Arguments for an object that stores them by value (a queue's item, a pipe's message): each of
   * this server's objects that lives by identity (a dict, a list, a Namespace, a registered
   * type's object) goes in as a token, and the object is kept here until the token comes out
   * (taken(), in returned()), so that a get() returns a proxy of the same object, as Python's
   * does: it returned a copy of the object's insides. (The library's own objects travel by their
   * shared memory.)
   */
  private keepIn(args: unknown[], tokens: string[]): unknown[] {
    if (!this.keepsByIdentity) return args
    return mapTree(args, (v) => {
      if (v === null || typeof v !== 'object' || !this.kinds.has(v) || (REDUCE in v && CORE in v)) return undefined
      const token = `${this.keptPrefix}${this.nextKept++}`
      this.kept.set(token, v)
      tokens.push(token)
      return token
    }) as unknown[]
  }

  /** The object a token of keepIn stands for, taken out of keeping; undefined for anything else. */
  taken(v: unknown): object | undefined {
    if (this.kept.size === 0 || typeof v !== 'string' || !v.startsWith(this.keptPrefix)) return undefined
    const obj = this.kept.get(v)
    this.kept.delete(v)
    return obj
  }

  /**
   * A result for a client: each of this server's objects in it as a proxy of it. The library's
   * shared objects (a lock in a queue item, a Value's lock) stay here, where their memory is. One
   * kept in another (a dict in a dict or a list, a Namespace, an object of a registered type, and
   * one a queue or pipe holds as a token, also where this server's own code took it out) goes as a
   * proxy too, as in Python, not as its insides; hosted again if every proxy of it had gone
   * meanwhile. A method that returns its own object gives a copy, as Python pickles it.
   */
  private returned(value: unknown, self?: unknown): unknown {
    try {
      return this.returnedTree(value, self)
    } catch (error) {
      throw error instanceof TypeError ? new TypeError(`the result cannot be sent back: ${error.message}`) : error
    }
  }

  private returnedTree(value: unknown, self?: unknown): unknown {
    return mapTree(value, (v) => {
      const obj = this.taken(v) ?? v
      if (obj === null || typeof obj !== 'object') return undefined
      if (!(REDUCE in obj && CORE in obj)) {
        const kind = this.kinds.get(obj)
        if (kind && obj !== self) return this.proxyOf(obj, kind.typeid, kind.type)
        return obj === v ? undefined : obj
      }
      const id = this.ids.get(obj)
      const typeid = id !== undefined ? this.objects.get(id)!.typeid : obj.constructor.name.replace(/^Aio/, '')
      const type = id !== undefined ? this.objects.get(id)!.type : HOSTED[typeid]
      return type ? this.proxyOf(obj, typeid, type) : obj
    })
  }

  /** A proxy of `obj`, hosted here (again) if it has no id. */
  private proxyOf(obj: object, typeid: string, type: HostedType): unknown {
    let id = this.ids.get(obj)
    if (id === undefined) {
      id = this.hostId(typeid, obj, type)
      this.objects.get(id)!.refs = 0 // the proxy's reduce() counts it (incref) as it goes out
    }
    return wrapProxy(new ProxyCore({ address: this.address, authkey: this.options.authkey, id, typeid }))
  }

  /** An object a Python client made (py-server.ts): one reference, its proxy's, as Python's create() counts. */
  hostPython(typeid: string, obj: unknown, type: HostedType): number {
    const id = this.hostId(typeid, obj, type)
    const h = this.objects.get(id)!
    h.refs = 1
    h.python = true
    return id
  }

  lookup(id: number): Hosted | undefined {
    return this.objects.get(id)
  }

  pyIncref(id: number): void {
    const h = this.objects.get(id)
    if (!h?.python || h.refs === undefined) throw new ValueError(`no object ${id} of a Python client on this manager`)
    h.refs++
    if (h.dropping) clearTimeout(h.dropping)
    h.dropping = undefined
  }

  /** Python's decref: references are counted by its proxies, not by connections (they come and go per call). */
  pyDecref(id: number): void {
    if (this.objects.get(id)?.python) this.dropUncharged(id)
  }

  /** One reference less that no client was charged with: a published name's (publish() again), or a Python proxy's. */
  private dropUncharged(id: number): void {
    const h = this.objects.get(id)
    if (h?.refs === undefined || h.refs === 0) return
    if (--h.refs === 0) this.dropLater(id, h)
  }

  /** The hosted object behind a proxy id (protocol.ts localReferent). */
  referent(id: number): unknown {
    return this.objects.get(id)?.obj
  }

  stop(): void {
    if (this.stopping) return
    this.stopping = true
    this.net.close()
    for (const c of this.clients) c.channel.abort(new OSError('the manager server stopped'))
    if (isLocalServer(this)) setLocalServer(undefined)
    if (this.laneDir) {
      rmSync(this.laneDir, { recursive: true, force: true })
      forgetAtExit(this.laneDir)
    }
  }

  /**
   * A fast lane for `parent`'s client (sync-pipe.ts): two FIFOs in a private folder, whose paths
   * the client opens. The request FIFO is held open for writing here too, so that its reader sees
   * no end-of-file before the client opens it; the lane ends when `parent` does. Null where FIFOs
   * cannot be made, or in a tracked worker thread (the client then stays on its socket).
   */
  private openLane(parent: ClientConn): { request: string; answer: string } | null {
    // Only a server on a main thread, or in a thread whose fds Node does not track (the spawn
    // context's broker): elsewhere Node tracks the fds fs opens in a worker thread, and a socket
    // closing one would leave that record stale (a later fd of the same number, closed at the
    // thread's end, would be someone else's).
    if (parent.lane || process.platform === 'win32' || !(isMainThread || this.options.lanes)) return null
    try {
      if (!this.laneDir) {
        this.laneDir = makeTempFolder('aio-manager-')
        // A server that ends with its process (exitWithParent, process.exit) leaves no folder.
        removeAtExit(this.laneDir)
      }
    } catch {
      return null
    }
    const n = this.nextLane++
    const request = join(this.laneDir, `${n}.request`)
    const answer = join(this.laneDir, `${n}.answer`)
    const fds: number[] = []
    try {
      execFileSync('mkfifo', ['-m', '600', request, answer], { stdio: 'ignore' })
      fds.push(openSync(request, constants.O_RDONLY | constants.O_NONBLOCK))
      fds.push(openSync(request, constants.O_WRONLY | constants.O_NONBLOCK))
      fds.push(openSync(answer, constants.O_RDWR | constants.O_NONBLOCK))
    } catch {
      for (const fd of fds) closeSync(fd)
      rmSync(request, { force: true })
      rmSync(answer, { force: true })
      if (this.lanesOpening === 0 && this.laneDir) {
        rmSync(this.laneDir, { recursive: true, force: true })
        forgetAtExit(this.laneDir)
        this.laneDir = undefined
      }
      return null
    }
    const [readFd, keepFd, writeFd] = fds
    this.lanesOpening++
    const input = new net.Socket({ fd: readFd, readable: true, writable: false })
    const output = new net.Socket({ fd: writeFd, readable: false, writable: true })
    input.unref()
    output.unref()
    const lane = new ClientConn(this.own())
    lane.owner = parent.owner
    lane.key = parent.key
    parent.owner.connections++
    parent.lane = lane
    let unlinked = false
    // The names go once the client has both ends open (by its first request), or with the lane;
    // the folder with the last of them, so that nothing is left in /tmp however this process ends.
    const unlink = (): void => {
      if (unlinked) return
      unlinked = true
      rmSync(request, { force: true })
      rmSync(answer, { force: true })
      if (--this.lanesOpening === 0 && this.laneDir) {
        rmSync(this.laneDir, { recursive: true, force: true })
        forgetAtExit(this.laneDir)
        this.laneDir = undefined
      }
    }
    // Once: a lane cut for a bad frame is cut again when its client's connection closes.
    let cutAlready = false
    const cut = (): void => {
      if (cutAlready) return
      cutAlready = true
      unlink()
      input.destroy()
      output.destroy()
      closeSync(keepFd)
      this.gone(lane)
    }
    lane.channel = {
      send: (bytes) => void output.write(framed(bytes)),
      abort: cut,
      watchFor: (answered) => watchFor(() => readNow(input, (chunk) => void reader.push(chunk)), answered),
    }
    // The same framing and size limit as a socket's: a client never sizes the server's allocations.
    const reader = messageReader(MAX_MESSAGE_BYTES, (bytes) => {
      unlink()
      this.received(lane, bytes)
    }, () => lane.channel.abort(new OSError('a frame over the size limit on a fast lane')))
    input.on('data', (chunk: Buffer) => void reader.push(chunk))
    input.on('error', () => lane.channel.abort(new OSError('the lane broke')))
    output.on('error', () => lane.channel.abort(new OSError('the lane broke')))
    return { request, answer }
  }
}

/** A registered user class: every public method, called as is (awaited if it returns a promise). */
function userType(obj: unknown): HostedType {
  const name = (obj as object).constructor.name
  return {
    exposed: publicMethods(obj),
    create: () => obj,
    call: async (o, method, args) => {
      const fn = (o as Record<string, unknown>)[method]
      // Python exposes an object's public methods: not what every object (or function) has
      // (constructor, toString, hasOwnProperty, bind: Object.prototype's and Function.prototype's).
      if (method.startsWith('_') || typeof fn !== 'function' || method === 'constructor' || fn === (Object.prototype as unknown as Record<string, unknown>)[method] || fn === (Function.prototype as unknown as Record<string, unknown>)[method]) throw new NotImplementedError(`'${name}' proxy does not expose method '${method}'`)
      return await (fn as (...a: unknown[]) => unknown).apply(o, args)
    },
  }
}

function publicMethods(obj: unknown): string[] {
  const out = new Set<string>()
  // Not what every object or function has; read as descriptors: a strict function's prototype
  // chain has accessors that throw (caller, arguments), and a getter is no method.
  for (let p = Object.getPrototypeOf(obj); p && p !== Object.prototype && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, k)
      if (k !== 'constructor' && !k.startsWith('_') && typeof d?.value === 'function') out.add(k)
    }
  }
  return [...out]
}

/**
 * The entry of a manager server process or thread: serves until a client asks for shutdown.
 * `ready` (a pipe end, thread context only) receives the address once listening.
 */
export async function runServer(options: ServerOptions, ready?: Connection): Promise<void> {
  if (options.exitWithParent && process.channel) {
    // The spawn bootstrap let go of its channel; a manager's server keeps it to see its parent go.
    process.channel.ref()
    process.once('disconnect', () => process.exit(0))
  }
  const server = new Server(options)
  await server.listen()
  if (options.addressFile) {
    // Whole or not at all: written aside, then renamed.
    writeFileSync(`${options.addressFile}.part`, JSON.stringify(server.address))
    renameSync(`${options.addressFile}.part`, options.addressFile)
  }
  if (ready) {
    ready.send(server.address)
    ready.close()
  }
  await server.done
}

