// aioprocessing-redis: the library's primitives by name on a Redis server (or Valkey), so that
// processes on any machine meet at `ctx.AioQueue('jobs')`, `ctx.AioLock('db')`... The objects are
// the library's own proxy classes (AioQueueProxy, AioLockProxy...) over a core that runs each call in
// this thread's Redis thread (thread.ts): a blocking call sleeps on a word until its answer is in,
// an awaitable one awaits it; every call has both forms, as everywhere in the library.

import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import * as errors from 'aioprocessing'
import { ProxyCore, wrapProxy, NotImplementedError, OSError, type CoroOptions } from 'aioprocessing/extend'
import type { AioBarrierProxy, AioBoundedSemaphoreProxy, AioConditionProxy, AioDictProxy, AioEventProxy, AioJoinableQueueProxy, AioListProxy, AioLockProxy, AioNamespaceProxy, AioQueueProxy, AioRLockProxy, AioSemaphoreProxy, AioSimpleQueueProxy, AioValueProxy } from 'aioprocessing'
import type { Reply } from './thread.js'

export interface RedisContextOptions {
  /** Where Redis listens: `redis://host:port`, `redis+unix:///path` or `/path/to/redis.sock`; default redis://127.0.0.1:6379. */
  url?: string
  /** The prefix of every key, so that applications sharing a Redis do not meet by accident (default 'aio'). */
  namespace?: string
  /** How long a lock or semaphore slot outlives its holder's death, in ms (default 10,000): renewed every third of it while the holder lives. */
  lease?: number
}

/** One Redis thread per calling thread and context: its ports and the word a blocking call sleeps on. */
class Bridge {
  private readonly worker: Worker
  private readonly sync: MessagePort
  private readonly async: MessagePort
  private readonly flag = new Int32Array(new SharedArrayBuffer(4))
  private nextId = 1
  private readonly pending = new Map<number, { resolve(r: Reply): void }>()

  constructor(readonly url: string, namespace: string, leaseMs: number) {
    const sync = new MessageChannel()
    const async = new MessageChannel()
    this.sync = sync.port1
    this.async = async.port1
    this.worker = new Worker(new URL('./thread.js', import.meta.url), {
      workerData: { url, namespace, leaseMs, flag: this.flag.buffer, sync: sync.port2, async: async.port2 },
      transferList: [sync.port2, async.port2],
    })
    this.worker.unref()
    this.worker.on('error', (e) => process.stderr.write(`aioprocessing-redis: the Redis thread failed: ${e.stack ?? e}\n`))
    this.async.on('message', (reply: Reply) => {
      const p = this.pending.get(reply.id)
      this.pending.delete(reply.id)
      if (this.pending.size === 0) this.async.unref()
      p?.resolve(reply)
    })
    this.async.unref()
  }

  /** A blocking call: this thread sleeps until the Redis thread has answered. */
  call(typeid: string, name: string, method: string, args: unknown[]): unknown {
    const id = this.nextId++
    Atomics.store(this.flag, 0, 0)
    this.sync.postMessage({ id, typeid, name, method, args, abortable: false })
    while (Atomics.load(this.flag, 0) === 0) Atomics.wait(this.flag, 0, 0, 1000)
    const m = receiveMessageOnPort(this.sync)
    if (!m) throw new OSError('the Redis thread gave no answer')
    return outcome(m.message as Reply, this.url)
  }

  async coroCall(typeid: string, name: string, method: string, args: unknown[], signal?: AbortSignal): Promise<unknown> {
    signal?.throwIfAborted()
    const id = this.nextId++
    const reply = new Promise<Reply>((resolve) => this.pending.set(id, { resolve }))
    this.async.ref()
    const onAbort = (): void => this.async.postMessage({ cancel: id })
    signal?.addEventListener('abort', onAbort, { once: true })
    this.async.postMessage({ id, typeid, name, method, args, abortable: signal !== undefined })
    try {
      const r = await reply
      // An abort that came too late (the call had finished) leaves its answer standing.
      if (!r.ok && r.error.name === 'AbortError' && signal?.aborted) throw signal.reason
      return outcome(r, this.url)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  close(): void {
    this.worker.postMessage({ close: true })
    void this.worker.terminate()
  }
}

/** An answer: its value, or the library's error of that name. */
function outcome(r: Reply, url: string): unknown {
  if (r.ok) return r.value
  const known = (errors as unknown as Record<string, unknown>)[r.error.name]
  if (typeof known === 'function') throw new (known as new (m: string) => Error)(r.error.message)
  const e = new Error(r.error.message)
  e.name = r.error.name
  if (r.error.name === 'KeyError' || r.error.name === 'IndexError') Object.setPrototypeOf(e, RangeError.prototype)
  if (r.error.name === 'AttributeError') Object.setPrototypeOf(e, TypeError.prototype)
  if (r.error.name === 'OSError') e.message = `${e.message} (${url})`
  throw e
}

/** The core of a named object's proxy: the library's proxy class calls it as it calls a manager's. */
class RedisCore extends ProxyCore {
  constructor(
    private readonly bridge: () => Bridge,
    readonly typeid: string,
    readonly name: string,
    url: string,
  ) {
    super({ address: url, authkey: null, id: 0, typeid })
  }

  override call(method: string, args: unknown[]): unknown {
    return this.bridge().call(this.typeid, this.name, method, args)
  }

  override coro_call(method: string, args: unknown[], signal?: AbortSignal): Promise<unknown> {
    return this.bridge().coroCall(this.typeid, this.name, method, args, signal)
  }

  override reduce(): never {
    throw new NotImplementedError(`a Redis object travels by its name: in the other thread or process, call redisContext(...).Aio${this.typeid}('${this.name}')`)
  }

  override describe(): string {
    return `${this.typeid} '${this.name}' on ${this.state.address}`
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 512) throw new TypeError('name must be a non-empty string (what other processes call the object)')
  return name
}

/**
 * The Redis context: factories that take a name first, so that every process naming the same
 * object (in the same namespace of the same Redis) gets it. Arguments after the name are the
 * local class's: the first process to create an object fixes them (a queue's maxsize, a
 * semaphore's value, a barrier's parties).
 */
export class RedisContext {
  readonly url: string
  readonly namespace: string
  readonly lease: number
  private bridgeOf: Bridge | undefined

  constructor(options: RedisContextOptions = {}) {
    this.url = urlOf(options.url ?? 'redis://127.0.0.1:6379')
    this.namespace = options.namespace ?? 'aio'
    this.lease = options.lease ?? 10_000
    if (!Number.isInteger(this.lease) || this.lease < 100) throw new TypeError('lease must be an integer of at least 100 (ms)')
    if (typeof this.namespace !== 'string' || this.namespace.includes(' ')) throw new TypeError('namespace must be a string without spaces')
  }

  private bridge(): Bridge {
    this.bridgeOf ??= new Bridge(this.url, this.namespace, this.lease)
    return this.bridgeOf
  }

  private make<T>(typeid: string, name: unknown, args: unknown[]): T {
    const n = checkName(name)
    this.bridge().call(typeid, n, '__create', args)
    return wrapProxy(new RedisCore(() => this.bridge(), typeid, n, this.url)) as T
  }

  private async coroMake<T>(typeid: string, name: unknown, args: unknown[], signal?: AbortSignal): Promise<T> {
    const n = checkName(name)
    await this.bridge().coroCall(typeid, n, '__create', args, signal)
    return wrapProxy(new RedisCore(() => this.bridge(), typeid, n, this.url)) as T
  }

  AioQueue<T = unknown>(name: string, maxsize = 0): AioQueueProxy<T> {
    return this.make('Queue', name, [maxsize])
  }
  AioJoinableQueue<T = unknown>(name: string, maxsize = 0): AioJoinableQueueProxy<T> {
    return this.make('JoinableQueue', name, [maxsize])
  }
  AioSimpleQueue<T = unknown>(name: string): AioSimpleQueueProxy<T> {
    return this.make('SimpleQueue', name, [])
  }
  AioLock(name: string): AioLockProxy {
    return this.make('Lock', name, [])
  }
  AioRLock(name: string): AioRLockProxy {
    return this.make('RLock', name, [])
  }
  AioSemaphore(name: string, value = 1): AioSemaphoreProxy {
    return this.make('Semaphore', name, [value])
  }
  AioBoundedSemaphore(name: string, value = 1): AioBoundedSemaphoreProxy {
    return this.make('BoundedSemaphore', name, [value])
  }
  AioEvent(name: string): AioEventProxy {
    return this.make('Event', name, [])
  }
  AioCondition(name: string): AioConditionProxy {
    return this.make('Condition', name, [])
  }
  AioBarrier(name: string, parties: number, action?: null, timeout: number | null = null): AioBarrierProxy {
    return this.make('Barrier', name, [parties, action ?? undefined, timeout])
  }
  AioValue(name: string, typecode: string, value?: unknown): AioValueProxy {
    return this.make('Value', name, [typecode, value])
  }
  dict<K = unknown, V = unknown>(name: string, init?: Map<K, V> | Record<string, V>): AioDictProxy<K, V> {
    return this.make('dict', name, [init])
  }
  list<T = unknown>(name: string, init?: Iterable<T>): AioListProxy<T> {
    return this.make('list', name, [init === undefined ? undefined : [...init]])
  }
  Namespace(name: string, init?: Record<string, unknown>): AioNamespaceProxy {
    return this.make('Namespace', name, [init])
  }

  /** The awaitable form of each factory: `await ctx.coro_make('Queue', 'jobs', [maxsize], { signal })`. */
  coro_make<T = unknown>(typeid: string, name: string, args: unknown[] = [], { signal }: CoroOptions = {}): Promise<T> {
    return this.coroMake<T>(typeid, name, args, signal)
  }

  /** Stops this thread's Redis thread (its connections; leases it held run out). */
  close(): void {
    this.bridgeOf?.close()
    this.bridgeOf = undefined
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

function urlOf(url: string): string {
  if (typeof url !== 'string' || url.length === 0) throw new TypeError('url must be a string: redis://host:port or a Unix socket path')
  return url
}

/** `redisContext({ url, namespace })`: the Redis context (see RedisContext). */
export function redisContext(options: RedisContextOptions = {}): RedisContext {
  return new RedisContext(options)
}
