// AioManager (Python's SyncManager / BaseManager): a server process that hosts objects, and the
// proxies that use them from any process. start() launches the server as a spawned process;
// connect() reaches one started elsewhere (a remote manager: TCP and an authkey); serveForever()
// runs one here, in a thread of this process, until a client asks it to shut down.

import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { AuthenticationError, NotImplementedError, OSError, ProcessError, ValueError } from '../core/errors.js'
import { channelTo, createPipe, dropChannel, shutdownRemote } from './proxy.js'
import { coroCreateRemote, createRemote } from './create-remote.js'
import { coroPyCreate, dropPyConnections, pyCreate, pyDispatch } from './py-client.js'
import { OP_DESCRIBE, OP_PUBLISH, SERVER_ITSELF, sameAddress, type ProxyState } from './protocol.js'
import { removeSocketFolder, socketFolder, startServerThread } from './spawn-context.js'
import { checkUnixPath } from '../ipc/sockets.js'
import { ProcessCore, targetOf, type Target } from '../process/process.js'
import { CORE } from '../core/transfer.js'
import type { ServerOptions } from './manager-server.js'
import type { FunctionRef } from '../core/source.js'
import { park, type Pending, type Waiter } from '../core/wait.js'

export interface ManagerOptions {
  /** ['host', port] for TCP (a remote manager) or a Unix socket path; default: a private Unix socket. */
  address?: string | readonly [string, number]
  /** The shared secret (bytes or a string); default: 32 random bytes. Remote clients must give the same. */
  authkey?: Uint8Array | string
  /**
   * 'pickle': connect() to a Python manager (`multiprocessing.managers.SyncManager` or a
   * `BaseManager` with registered types), speaking its protocol. The library's proxies come back
   * (a Queue proxy for `Queue()`...), their methods called by their Python names. Default: the
   * library's own protocol. A server started here serves Python clients either way.
   */
  serializer?: 'default' | 'pickle'
  /**
   * A server started here (start(), serveForever()) drops a connection that has not finished its
   * authkey handshake within this many ms (default: no limit). Silent peers are bounded anyway:
   * past 64 connections in their handshake at once, the oldest is dropped. A limit also drops a
   * client of this library whose event loop its own blocking calls hold longer than that while
   * its awaitable connection handshakes, so set it above your longest blocking wait.
   */
  handshakeTimeout?: number
}

const INITIAL = 0
const STARTED = 1
const SHUTDOWN = 2
const STATE_NAMES = ['initial', 'started', 'shut down']
const SERVER = () => new URL('./manager-server.js', import.meta.url).href

function hexKey(key: Uint8Array | string | undefined): string {
  if (key === undefined) return randomBytes(32).toString('hex')
  if (typeof key === 'string') return Buffer.from(key).toString('hex')
  if (key instanceof Uint8Array) return Buffer.from(key).toString('hex')
  throw new TypeError('authkey must be a Uint8Array or a string')
}

export class ManagerCore implements Waiter {
  readonly i32 = new Int32Array(new SharedArrayBuffer(4))
  waitIndex = 0
  waitValue = 0
  address: ProxyState['address'] | undefined
  readonly authkey: string
  private state = INITIAL
  private server: ProcessCore | undefined
  private readonly registry: Record<string, FunctionRef> = {}
  /** 'start' and 'serveForever' own their server; 'connect' does not. */
  private role: 'start' | 'serve' | 'connect' | undefined
  /** The socket folder made for this manager's server (no address was given), removed once the server stopped. */
  private folder: string | undefined
  /** Where the server started with port 0 writes the address it got, until start() has read it. */
  private addressFile: string | undefined
  /** A Python manager (connect() with serializer 'pickle'): py-client.ts makes its proxies. */
  private readonly python: boolean
  private readonly handshakeTimeout: number | undefined

  constructor(options: ManagerOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
    const { address, authkey, serializer, handshakeTimeout } = options
    if (handshakeTimeout !== undefined && !(typeof handshakeTimeout === 'number' && handshakeTimeout > 0 && Number.isFinite(handshakeTimeout))) {
      throw new TypeError(`handshakeTimeout must be a positive number of ms, not ${String(handshakeTimeout)}`)
    }
    this.handshakeTimeout = handshakeTimeout
    if (serializer !== undefined && serializer !== 'default' && serializer !== 'pickle') throw new TypeError(`serializer must be 'default' or 'pickle', not ${JSON.stringify(serializer)}`)
    this.python = serializer === 'pickle'
    if (address !== undefined && typeof address !== 'string' && !(Array.isArray(address) && address.length === 2 && typeof address[0] === 'string' && Number.isInteger(address[1]))) {
      throw new TypeError(`address must be ['host', port] or a Unix socket path, not ${JSON.stringify(address)}`)
    }
    this.address = address === undefined ? undefined : typeof address === 'string' ? checkUnixPath(address) : [address[0], address[1]]
    this.authkey = hexKey(authkey)
  }

  /** Python's register(typeid, callable): the server makes `typeid` objects with `{ module, name }` (a class, or a function returning the object). */
  register(typeid: string, callable: Target): void {
    if (typeof typeid !== 'string' || !/^[A-Za-z_]\w*$/.test(typeid)) throw new TypeError('typeid must be an identifier')
    if (this.state !== INITIAL) throw new ProcessError('register() must come before start(), connect() or serveForever()')
    const ref = targetOf(callable, 'callable')
    if ('source' in ref) throw new TypeError(`callable for '${typeid}' must be { module, name }: the server imports it`)
    this.registry[typeid] = ref
  }

  /** Gives `proxy`'s object (one of this manager's) the typeid `name` on the server. */
  publish(name: string, proxy: object): void {
    this.checkStarted()
    if (typeof name !== 'string' || !/^[A-Za-z_]\w*$/.test(name)) throw new TypeError('name must be an identifier')
    if (this.python) throw new NotImplementedError("publish() on a Python manager: register a getter on the Python side (BaseManager.register('name', callable))")
    const core = proxy !== null && typeof proxy === 'object' ? (proxy as { [CORE]?: unknown })[CORE] : undefined
    const state = (core as { state?: ProxyState } | undefined)?.state
    if (!state || typeof state.id !== 'number' || !sameAddress(state.address, this.address!)) throw new TypeError('proxy must be a proxy of an object of this manager (manager.Queue(), manager.dict()...)')
    channelTo(this.address!, this.authkey).call([0, OP_PUBLISH, name, state.id])
  }

  private checkNotPython(what: string): void {
    if (this.python) throw new ValueError(`${what} with serializer 'pickle': a Node manager serves Python clients with the default serializer already; 'pickle' is for connect() to a Python manager`)
  }

  private checkInitial(): void {
    if (this.state === STARTED) throw new ProcessError('Already started server')
    if (this.state === SHUTDOWN) throw new ProcessError('Manager has shut down')
  }

  private options(): ServerOptions {
    if (this.address === undefined) {
      this.folder = socketFolder()
      this.address = join(this.folder, 'manager.sock')
    }
    return { address: this.address, authkey: this.authkey, registry: this.registry, handshakeTimeout: this.handshakeTimeout }
  }

  /** Launches the server as a spawned process and waits until it answers. */
  startBegin(): Waiter & { deadline: number } {
    this.checkInitial()
    this.checkNotPython('start()')
    const options = this.options()
    // Port 0: the server writes the address it got to a file in a private folder of ours, which
    // start() reads before it connects (Python's start() has it back over a pipe).
    if (Array.isArray(options.address) && options.address[1] === 0) {
      this.folder ??= socketFolder()
      this.addressFile = join(this.folder, 'address.json')
    }
    this.server = new ProcessCore({ target: { module: SERVER(), name: 'runServer' }, args: [{ ...options, exitWithParent: true, addressFile: this.addressFile }], name: 'SyncManager', daemon: true, startMethod: 'spawn', allClasses: true })
    this.server.start()
    this.role = 'start'
    return { i32: new Int32Array(new SharedArrayBuffer(4)), waitIndex: 0, waitValue: 0, deadline: performance.now() + 30_000 }
  }

  /** start()'s attempt: connected, or PENDING for a short sleep while the server binds. */
  startAttempt(w: Waiter & { deadline: number }): undefined | Pending {
    let answer: unknown
    try {
      if (this.addressFile) {
        this.address = JSON.parse(readFileSync(this.addressFile, 'utf8')) as [string, number]
        this.addressFile = undefined
      }
      const channel = channelTo(this.address!, this.authkey)
      channel.probe()
      answer = channel.call([0, OP_DESCRIBE, 0])
    } catch (error) {
      if (this.server!.exitcode !== null) throw new ProcessError(`the manager server process ended with exitcode ${this.server!.exitcode} before it served`)
      if (error instanceof AuthenticationError) throw error
      if (performance.now() > w.deadline) throw new ProcessError(`the manager server did not answer within 30 s: ${(error as Error).message}`)
      // A poll, not a word: the server is another OS process, which shares no memory with this
      // one, and this thread may be blocked in start(), so no event of its own loop can store to
      // a word either. Connecting is what tells that the server serves; it is tried every 5 ms
      // for at most 30 s, only while a manager starts.
      return park(w, w.i32, 0, 0, 5)
    }
    // What answers may be another manager at the same address, this one's server having failed
    // to bind it (EADDRINUSE): its proxies would reach the other, and shutdown() would stop it.
    if (answer !== `${SERVER_ITSELF} ${this.server!.pid}`) {
      // The connection stays: it is this thread's to that address, which another manager's proxies use.
      this.server!.kill()
      throw new OSError(`[Errno 98] Address already in use: another server answers at ${JSON.stringify(this.address)}`)
    }
    this.state = STARTED
    return undefined
  }

  /** Connects to a manager served elsewhere (Python's connect()); a wrong authkey throws AuthenticationError. */
  connect(): void {
    this.checkInitial()
    if (this.address === undefined) throw new ValueError('connect() needs the address of a running manager')
    if (this.python) pyDispatch(this.address, this.authkey, 'dummy')
    else this.probe(this.address)
    this.role = 'connect'
    this.state = STARTED
  }

  /**
   * Connects and makes one call that has an answer: a Python manager answers it with a pickle,
   * which says what to do instead of failing at the first real call.
   */
  private probe(address: ProxyState['address']): void {
    const channel = channelTo(address, this.authkey)
    channel.probe()
    try {
      channel.call([0, OP_DESCRIBE, 0])
    } catch (error) {
      if (/Python pickle/.test(String((error as Error)?.message))) {
        dropChannel(address, this.authkey)
        throw new ValueError(`the manager at ${JSON.stringify(address)} is a Python manager: connect with new AioManager({ address, authkey, serializer: 'pickle' })`)
      }
      // An older server of the library: "no object 0".
    }
  }

  /** Runs the server in a thread of this process; serveForever()'s wait then lasts until a client shuts it down. */
  serveBegin(): ProcessCore {
    this.checkInitial()
    this.checkNotPython('serveForever()')
    const { server, address } = startServerThread(this.options(), 'SyncManager', false)
    this.address = address
    this.server = server
    this.role = 'serve'
    this.state = STARTED
    return server
  }

  /** serveForever()'s attempt: done when the server has stopped. */
  serveAttempt(server: ProcessCore): undefined | Pending {
    const r = server.joinAttempt()
    if (r === undefined) this.ended()
    return r
  }

  /** The server has stopped: the socket folder this manager made for it goes. */
  private ended(): void {
    this.state = SHUTDOWN
    if (this.folder !== undefined) removeSocketFolder(this.folder)
    this.folder = undefined
  }

  /** Asks the server to stop; shutdown() then waits for the server process of start() or serveForever(). */
  shutdownBegin(): Waiter {
    const idle: Waiter = { i32: this.i32, waitIndex: 0, waitValue: 0 }
    if (this.state !== STARTED) {
      this.state = SHUTDOWN
      return idle
    }
    this.state = SHUTDOWN
    if (this.python) {
      dropPyConnections(this.address!)
      return idle
    }
    try {
      shutdownRemote(this.address!, this.authkey)
    } catch {
      // gone already
    }
    dropChannel(this.address!, this.authkey)
    return this.role === 'connect' || !this.server ? idle : this.server
  }

  /**
   * close(): shutdown() of a server this manager runs; a connect()ed one makes no more objects and
   * the server serves on. Its connection stays: it is this thread's to that address, which the
   * proxies it made use (and another manager's, of the same server): closing it would release
   * their objects on the server.
   */
  closeBegin(): Waiter {
    if (this.role !== 'connect' || this.state !== STARTED) return this.shutdownBegin()
    this.state = SHUTDOWN
    return { i32: this.i32, waitIndex: 0, waitValue: 0 }
  }

  /** shutdown()'s attempt: the server process has ended (at once for a connect()ed manager). */
  shutdownAttempt(w: Waiter): undefined | Pending {
    const r = w instanceof ProcessCore ? w.joinAttempt() : undefined
    if (r === undefined) this.ended()
    return r
  }

  /** shutdown()'s timeout: a server that does not end is terminated, as Python's does after its shutdown timeout. */
  shutdownExpire(w: Waiter): undefined {
    if (w instanceof ProcessCore) w.terminate()
    return undefined
  }

  private checkStarted(): void {
    if (this.state === INITIAL) throw new ProcessError('server not yet started: call start() or connect() first')
    if (this.state === SHUTDOWN) throw new ProcessError('Manager has shut down')
  }

  /** Makes an object on the server: its proxy. */
  create<T>(typeid: string, args: unknown[]): T {
    this.checkStarted()
    if (this.python) return pyCreate(this.address!, this.authkey, typeid, args) as T
    return createRemote(this.address!, this.authkey, typeid, args) as T
  }

  /** A pipe whose two ends the server holds: proxies that any process may use. */
  pipe<C = any>(duplex: boolean): [C, C] {
    this.checkStarted()
    if (this.python) throw new NotImplementedError("Pipe() of a Python manager is not reachable from Node; use a Queue")
    return createPipe<C>(this.address!, this.authkey, duplex)
  }

  async coroCreate<T>(typeid: string, args: unknown[]): Promise<T> {
    this.checkStarted()
    if (this.python) return (await coroPyCreate(this.address!, this.authkey, typeid, args)) as T
    return (await coroCreateRemote(this.address!, this.authkey, typeid, args)) as T
  }

  get pid(): number | null {
    return this.role === 'start' ? (this.server?.pid ?? null) : null
  }

  describe(): string {
    return `state=${STATE_NAMES[this.state]}${this.python ? ' python' : ''}${this.address ? ` address=${JSON.stringify(this.address)}` : ''}`
  }

}

