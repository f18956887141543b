// aioprocessing-redis: the library's primitives by name on a Redis server (or Valkey), so that
// processes on any machine meet at `ctx.AioQueue('jobs')`, `ctx.AioLock('db')`... The objects are
// the library's own proxy classes (AioQueueProxy, AioLockProxy...) over a core that runs each call in
// this thread's Redis thread (thread.ts): a blocking call sleeps on a word until its answer is in,
// an awaitable one awaits it; every call has both forms, as everywhere in the library.

import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { deserialize, serialize } from 'node:v8'
import * as errors from 'aioprocessing'
import { AioBarrier, AioBoundedSemaphore, AioCondition, AioJoinableQueue, AioQueue, AioSemaphore, AioSimpleQueue, AioValue } from 'aioprocessing'
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
  /**
   * How long a call waits for an unreachable Redis to come back, in ms (default 10,000): a Redis
   * restarted within it is transparent (ioredis reconnects and resends), past it every call in
   * flight, and every new one while Redis stays down, fails with OSError. A call with a shorter
   * timeout fails at its timeout.
   */
  outage?: number
}

/** One Redis thread per calling thread and context: its ports and the word a blocking call sleeps on. */
class Bridge {
  private readonly worker: Worker
  private readonly sync: MessagePort
  private readonly async: MessagePort
  private readonly flag = new Int32Array(new SharedArrayBuffer(8))
  private nextId = 1
  private readonly pending = new Map<number, { resolve(r: Reply): void }>()

  constructor(readonly url: string, namespace: string, leaseMs: number, outageMs: number) {
    const sync = new MessageChannel()
    const async = new MessageChannel()
    this.sync = sync.port1
    this.async = async.port1
    this.worker = new Worker(new URL('./thread.js', import.meta.url), {
      workerData: { url, namespace, leaseMs, outageMs, flag: this.flag.buffer, sync: sync.port2, async: async.port2 },
      transferList: [sync.port2, async.port2],
    })
    this.worker.unref()
    this.worker.on('error', (e) => process.stderr.write(`aioprocessing-redis: the Redis thread failed: ${e.stack ?? e}\n`))
    // Awaited calls of a Redis thread that ended get an error instead of waiting for ever.
    this.worker.on('exit', () => {
      for (const [id, p] of this.pending) p.resolve({ id, ok: false, error: { name: 'OSError', message: 'the Redis thread of this context ended: make a new context' } })
      this.pending.clear()
    })
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
    this.sync.postMessage({ id, typeid, name, method, args: serialize(args), abortable: false })
    while (Atomics.load(this.flag, 0) === 0) {
      if (Atomics.load(this.flag, 1) === 1) throw new OSError(`the Redis thread of this context ended (${this.url}): make a new context`)
      Atomics.wait(this.flag, 0, 0, 1000)
    }
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
    this.async.postMessage({ id, typeid, name, method, args: serialize(args), abortable: signal !== undefined })
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

/**
 * An error that crossed from the Redis thread or a pool worker: the library's class of that name,
 * JavaScript's own (RangeError, TypeError...), or an Error carrying the name (KeyError, AttributeError).
 */
function rebuildError(name: string, message: string): Error {
  const builtin = (globalThis as Record<string, unknown>)[name]
  const known = (errors as unknown as Record<string, unknown>)[name] ?? (typeof builtin === 'function' && (builtin === Error || builtin.prototype instanceof Error) ? builtin : undefined)
  return typeof known === 'function' ? new (known as new (m: string) => Error)(message) : Object.assign(new Error(message), { name })
}

/** An answer: its value, or its error thrown here. */
function outcome(r: Reply, url: string): unknown {
  if (r.ok) return deserialize(r.value)
  throw rebuildError(r.error.name, r.error.name === 'OSError' ? `${r.error.message} (${url})` : r.error.message)
}

/**
 * What a call's arguments may hold: data that V8 serializes (numbers, strings, bigints, arrays,
 * plain objects, Maps, Sets, Dates, typed arrays...). A function, a symbol or a live object (a
 * lock, a proxy) has no form in Redis: the TypeError names where it is, as the local classes do.
 */
function checkSendable(value: unknown, path: string, seen = new Set<object>()): void {
  if (typeof value === 'function') throw new TypeError(`${path} is a function, which cannot be kept in Redis: send data`)
  if (typeof value === 'symbol') throw new TypeError(`${path} is symbol, which cannot be kept in Redis`)
  if (value === null || typeof value !== 'object' || seen.has(value)) return
  seen.add(value)
  if (Array.isArray(value)) return value.forEach((v, i) => checkSendable(v, `${path}[${i}]`, seen))
  if (value instanceof Map) {
    for (const [k, v] of value) {
      checkSendable(k, `${path} key`, seen)
      checkSendable(v, `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : String(k)})`, seen)
    }
    return
  }
  if (value instanceof Set) return [...value].forEach((v, i) => checkSendable(v, `${path} item ${i}`, seen))
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    for (const [k, v] of Object.entries(value)) checkSendable(v, `${path}.${k}`, seen)
    return
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp || value instanceof Error) return
  throw new TypeError(`${path} is ${proto?.constructor?.name ?? 'an object'}, which cannot be kept in Redis: send data (a Redis object travels by its name)`)
}

/** The core of a named object's proxy: the library's proxy class calls it as it calls a manager's. */
class RedisCore extends ProxyCore {
  constructor(
    private readonly bridge: () => Bridge,
    readonly typeid: string,
    readonly name: string,
    url: string,
    /** A Value's local twin: what is stored goes through it, so it is what a local Value of that typecode holds (wrapping, rounding, bytes). */
    private readonly scratch?: { value: unknown },
  ) {
    super({ address: url, authkey: null, id: 0, typeid })
  }

  private args(method: string, args: unknown[], names?: readonly string[]): unknown[] {
    if (this.scratch && method === '__set__' && args[0] === 'value') {
      this.scratch.value = args[1]
      return ['value', this.scratch.value]
    }
    args.forEach((a, i) => checkSendable(a, names?.[i] ?? `${method}() argument ${i}`))
    return args
  }

  override call(method: string, args: unknown[], names?: readonly string[]): unknown {
    if (method === 'getLock' || method === 'getObj') return this.local(method)
    return this.bridge().call(this.typeid, this.name, method, this.args(method, args, names))
  }

  override coro_call(method: string, args: unknown[], signal?: AbortSignal, names?: readonly string[]): Promise<unknown> {
    if (method === 'getLock' || method === 'getObj') return Promise.resolve().then(() => this.local(method))
    return this.bridge().coroCall(this.typeid, this.name, method, this.args(method, args, names), signal)
  }

  /** A Value's getLock/getObj: a Redis Value has its own RLock and no ctypes object. */
  private local(method: string): never {
    throw new NotImplementedError(`${method}() of a Redis Value: its lock is its own (acquire()/release() on the Value), and it has no ctypes object`)
  }

  override reduce(): never {
    throw new NotImplementedError(`a Redis object travels by its name: in the other thread or process, call redisContext(...).Aio${this.typeid}('${this.name}')`)
  }

  override describe(): string {
    try {
      return String(this.bridge().call(this.typeid, this.name, '__describe__', []))
    } catch {
      return `${this.typeid} '${this.name}' on ${this.state.address}, unreachable`
    }
  }
}

/**
 * Checks a factory's arguments by making the local object (so the errors are the local class's,
 * word for word), then lets it go; for a Value, keeps it as the core's scratch.
 */
function validate(typeid: string, args: unknown[]): { value: unknown } | undefined {
  switch (typeid) {
    case 'Queue':
      new AioQueue(...(args as [number, never])).close()
      return undefined
    case 'JoinableQueue':
      new AioJoinableQueue(...(args as [number, never])).close()
      return undefined
    case 'SimpleQueue':
      new AioSimpleQueue().close()
      return undefined
    case 'Semaphore':
      new AioSemaphore(...(args as [number]))
      return undefined
    case 'BoundedSemaphore':
      new AioBoundedSemaphore(...(args as [number]))
      return undefined
    case 'Condition':
      new AioCondition(...(args as [never]))
      if (args[0] !== undefined) throw new NotImplementedError('a Redis Condition has its own Redis RLock: a lock of another context cannot guard it')
      return undefined
    case 'Barrier':
      new AioBarrier(...(args as [number, never, number]))
      if (args[1] !== undefined) throw new NotImplementedError('a Barrier action cannot be shared through Redis: run it in the party whose wait() returned 0')
      return undefined
    case 'Value': {
      const options = args[2] as { lock?: unknown } | undefined
      if (options?.lock !== undefined && options.lock !== true && options.lock !== false) throw new NotImplementedError('a Redis Value has its own Redis RLock: a lock of another context cannot guard it')
      return new AioValue(...(args.slice(0, 2) as [never, never]))
    }
    default:
      return undefined
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 512) throw new TypeError('name must be a non-empty string (what other processes call the object)')
  return name
}

/** A task of a Redis pool: a function a worker loaded, by its module's id and its export's name. */
export interface TaskRef {
  module: string
  name: string
}

export interface RedisPoolOptions {
  /** Runs of a task whose worker died before another worker takes it over for good (default 1: one retry). */
  retries?: number
  /** How long (ms) a task's entry may go without its worker's heartbeat before it is retried (default 30,000; the workers' --idle should match). */
  idle?: number
}

interface TaskResult {
  task: number
  ok: boolean
  value?: unknown[]
  error?: { name: string; message: string; stack?: string }
}

function checkTask(func: unknown): TaskRef {
  if (typeof func === 'function') throw new TypeError('a Redis pool runs functions by { module, name } only: shipping function source to other machines would be running code from the network. Start workers with --module and name the function')
  const f = func as TaskRef
  if (!f || typeof f !== 'object' || typeof f.module !== 'string' || typeof f.name !== 'string') throw new TypeError('func must be { module, name }: the module id a worker was started with (--module) and the name of its exported function')
  return { module: f.module, name: f.name }
}

/** A task's values, or its error rebuilt as the library's class of that name, with the worker's stack. */
function unwrap(r: TaskResult): unknown[] {
  if (r.ok) return r.value ?? []
  const e = r.error!
  const error = rebuildError(e.name, e.message)
  if (e.stack) error.stack = `${error.name}: ${e.message}\n    (in a pool worker)\n${e.stack.split('\n').slice(1).join('\n')}`
  throw error
}

/** The result of applyAsync/mapAsync/starmapAsync: Python's AsyncResult. */
export class RedisAsyncResult<R> {
  private value: { r: R } | { e: unknown } | undefined
  constructor(
    private readonly pool: RedisPool,
    private readonly tasks: number[],
    private readonly finish: (values: unknown[][]) => R,
  ) {}
  private settle(results: TaskResult[] | undefined): void {
    if (!results) return
    try {
      this.value = { r: this.finish(results.map(unwrap)) }
    } catch (e) {
      this.value = { e }
    }
  }
  private out(): R {
    if (!this.value) throw new errors.TimeoutError()
    if ('e' in this.value) throw this.value.e
    return this.value.r
  }
  /** Waits up to `timeout` ms (forever by default); TimeoutError if not ready then. */
  get(timeout: number | null = null): R {
    if (!this.value) this.settle(this.pool.waitTasks(this.tasks, timeout))
    return this.out()
  }
  async coro_get(timeout: number | null = null, { signal }: CoroOptions = {}): Promise<R> {
    if (!this.value) this.settle(await this.pool.coroWaitTasks(this.tasks, timeout, signal))
    return this.out()
  }
  wait(timeout: number | null = null): void {
    try {
      this.get(timeout)
    } catch {
      // wait() only waits
    }
  }
  async coro_wait(timeout: number | null = null, options: CoroOptions = {}): Promise<void> {
    await this.coro_get(timeout, options).catch(() => undefined)
  }
  ready(): boolean {
    return this.value !== undefined || this.pool.readyTasks(this.tasks)
  }
  successful(): boolean {
    if (!this.ready()) throw new errors.ValueError('the result is not ready')
    this.get(0)
    return this.value !== undefined && 'r' in this.value
  }
}

/**
 * A pool whose workers run anywhere (`npx aioprocessing-worker --pool <name> --module ./tasks.js`):
 * the thread pool's methods, tasks by `{ module, name }`. A worker that dies mid-task has the task
 * taken over by another after `idle` ms, `retries` times; then it fails with WorkerLostError.
 */
export class RedisPool {
  private readonly ref: string
  private readonly pending = new Set<number>()
  private state: 'run' | 'close' | 'terminate' = 'run'

  constructor(
    private readonly bridge: () => Bridge,
    readonly name: string,
    options: RedisPoolOptions,
  ) {
    this.ref = String(this.bridge().call('Pool', name, '__create', [options]))
  }

  private submit(func: unknown, chunks: unknown[][][]): number[] {
    const f = checkTask(func)
    if (this.state !== 'run') throw new errors.ValueError('Pool not running')
    chunks.forEach((calls, i) => calls.forEach((args, j) => checkSendable(args, `args of call ${i * calls.length + j}`)))
    const tasks = this.bridge().call('Pool', this.name, 'submit', [this.ref, f.module, f.name, chunks]) as number[]
    for (const t of tasks) this.pending.add(t)
    return tasks
  }

  /** @internal */
  waitTasks(tasks: number[], timeout: number | null): TaskResult[] | undefined {
    const r = this.bridge().call('Pool', this.name, 'wait', [this.ref, tasks, timeout]) as TaskResult[] | undefined
    if (r) for (const t of tasks) this.pending.delete(t)
    return r
  }
  /** @internal */
  async coroWaitTasks(tasks: number[], timeout: number | null, signal?: AbortSignal): Promise<TaskResult[] | undefined> {
    const r = (await this.bridge().coroCall('Pool', this.name, 'wait', [this.ref, tasks, timeout], signal)) as TaskResult[] | undefined
    if (r) for (const t of tasks) this.pending.delete(t)
    return r
  }
  /** @internal */
  readyTasks(tasks: number[]): boolean {
    return (this.bridge().call('Pool', this.name, 'ready', [this.ref, tasks]) as number[]).length === tasks.length
  }

  private static chunks(items: unknown[][], chunksize?: number): unknown[][][] {
    const size = chunksize ?? Math.max(1, Math.ceil(items.length / 64))
    if (!Number.isInteger(size) || size < 1) throw new TypeError('chunksize must be a positive integer')
    const out: unknown[][][] = []
    for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
    return out
  }

  apply<R = unknown>(func: TaskRef, args: unknown[] = []): R {
    return this.applyAsync<R>(func, args).get()
  }
  async coro_apply<R = unknown>(func: TaskRef, args: unknown[] = [], options: CoroOptions = {}): Promise<R> {
    return this.applyAsync<R>(func, args).coro_get(null, options)
  }
  applyAsync<R = unknown>(func: TaskRef, args: unknown[] = []): RedisAsyncResult<R> {
    return new RedisAsyncResult<R>(this, this.submit(func, [[args]]), (v) => v[0][0] as R)
  }
  map<R = unknown>(func: TaskRef, iterable: Iterable<unknown>, chunksize?: number): R[] {
    return this.mapAsync<R>(func, iterable, chunksize).get()
  }
  async coro_map<R = unknown>(func: TaskRef, iterable: Iterable<unknown>, chunksize?: number, options: CoroOptions = {}): Promise<R[]> {
    return this.mapAsync<R>(func, iterable, chunksize).coro_get(null, options)
  }
  mapAsync<R = unknown>(func: TaskRef, iterable: Iterable<unknown>, chunksize?: number): RedisAsyncResult<R[]> {
    return this.starmapAsync<R>(func, [...iterable].map((x) => [x]), chunksize)
  }
  starmap<R = unknown>(func: TaskRef, iterable: Iterable<unknown[]>, chunksize?: number): R[] {
    return this.starmapAsync<R>(func, iterable, chunksize).get()
  }
  async coro_starmap<R = unknown>(func: TaskRef, iterable: Iterable<unknown[]>, chunksize?: number, options: CoroOptions = {}): Promise<R[]> {
    return this.starmapAsync<R>(func, iterable, chunksize).coro_get(null, options)
  }
  starmapAsync<R = unknown>(func: TaskRef, iterable: Iterable<unknown[]>, chunksize?: number): RedisAsyncResult<R[]> {
    const calls = [...iterable].map((a) => {
      if (!Array.isArray(a)) throw new TypeError('starmap takes an iterable of argument lists')
      return a
    })
    return new RedisAsyncResult<R[]>(this, this.submit(func, RedisPool.chunks(calls, chunksize)), (v) => v.flat() as R[])
  }

  /** Results in order, as they come: `for await (const r of pool.imap(...))`, or `next(timeout)`. */
  imap<R = unknown>(func: TaskRef, iterable: Iterable<unknown>, chunksize = 1): RedisIMapIterator<R> {
    return new RedisIMapIterator<R>(this, this.submit(func, RedisPool.chunks([...iterable].map((x) => [x]), chunksize)), true)
  }
  /** Results in the order they finish. */
  imapUnordered<R = unknown>(func: TaskRef, iterable: Iterable<unknown>, chunksize = 1): RedisIMapIterator<R> {
    return new RedisIMapIterator<R>(this, this.submit(func, RedisPool.chunks([...iterable].map((x) => [x]), chunksize)), false)
  }
  /** @internal */
  waitAny(tasks: number[], timeout: number | null): TaskResult | undefined {
    const r = this.bridge().call('Pool', this.name, 'waitAny', [this.ref, tasks, timeout]) as TaskResult | undefined
    if (r) this.pending.delete(r.task)
    return r
  }
  /** @internal */
  async coroWaitAny(tasks: number[], timeout: number | null, signal?: AbortSignal): Promise<TaskResult | undefined> {
    const r = (await this.bridge().coroCall('Pool', this.name, 'waitAny', [this.ref, tasks, timeout], signal)) as TaskResult | undefined
    if (r) this.pending.delete(r.task)
    return r
  }

  /** No more tasks; those submitted still finish. */
  close(): void {
    if (this.state === 'run') this.state = 'close'
    this.bridge().call('Pool', this.name, 'close', [this.ref])
  }
  /** Takes back every task not finished (PoolTerminatedError); running ones finish on their workers, unanswered. */
  terminate(): void {
    this.state = 'terminate'
    this.bridge().call('Pool', this.name, 'terminate', [this.ref])
  }
  /** Waits for every task submitted (after close() or terminate(), as Python's). */
  join(timeout: number | null = null): void {
    if (this.state === 'run') throw new errors.ValueError('Pool is still running')
    if (this.pending.size) this.waitTasks([...this.pending], timeout)
  }
  async coro_join(timeout: number | null = null, { signal }: CoroOptions = {}): Promise<void> {
    if (this.state === 'run') throw new errors.ValueError('Pool is still running')
    if (this.pending.size) await this.coroWaitTasks([...this.pending], timeout, signal)
  }
  [Symbol.dispose](): void {
    this.terminate()
  }
}

/** Python's IMapIterator over a Redis pool's results. */
export class RedisIMapIterator<R> implements IterableIterator<R> {
  private buffered: unknown[] = []
  private left: number[]
  constructor(
    private readonly pool: RedisPool,
    tasks: number[],
    private readonly ordered: boolean,
  ) {
    this.left = [...tasks]
  }
  private take(r: TaskResult | TaskResult[] | undefined): void {
    if (!r) throw new errors.TimeoutError()
    for (const one of Array.isArray(r) ? r : [r]) {
      this.left = this.left.filter((t) => t !== one.task)
      this.buffered.push(...unwrap(one))
    }
  }
  /** The next result, waiting up to `timeout` ms (TimeoutError); done when all came. */
  next(timeout: number | null = null): IteratorResult<R> {
    if (this.buffered.length === 0 && this.left.length) this.take(this.ordered ? this.pool.waitTasks([this.left[0]], timeout) : this.pool.waitAny(this.left, timeout))
    return this.buffered.length ? { value: this.buffered.shift() as R, done: false } : { value: undefined as never, done: true }
  }
  async coro_next(timeout: number | null = null, { signal }: CoroOptions = {}): Promise<IteratorResult<R>> {
    if (this.buffered.length === 0 && this.left.length) this.take(this.ordered ? await this.pool.coroWaitTasks([this.left[0]], timeout, signal) : await this.pool.coroWaitAny(this.left, timeout, signal))
    return this.buffered.length ? { value: this.buffered.shift() as R, done: false } : { value: undefined as never, done: true }
  }
  [Symbol.iterator](): IterableIterator<R> {
    return this
  }
  [Symbol.asyncIterator](): AsyncIterableIterator<R> {
    return { next: () => this.coro_next(), [Symbol.asyncIterator]() { return this } } as AsyncIterableIterator<R>
  }
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
  readonly outage: number
  private bridgeOf: Bridge | undefined

  constructor(options: RedisContextOptions = {}) {
    this.url = urlOf(options.url ?? 'redis://127.0.0.1:6379')
    this.namespace = options.namespace ?? 'aio'
    this.lease = options.lease ?? 10_000
    if (!Number.isInteger(this.lease) || this.lease < 100) throw new TypeError('lease must be an integer of at least 100 (ms)')
    this.outage = options.outage ?? 10_000
    if (!Number.isInteger(this.outage) || this.outage < 0) throw new TypeError('outage must be an integer of at least 0 (ms)')
    if (typeof this.namespace !== 'string' || this.namespace.includes(' ')) throw new TypeError('namespace must be a string without spaces')
  }

  private bridge(): Bridge {
    this.bridgeOf ??= new Bridge(this.url, this.namespace, this.lease, this.outage)
    return this.bridgeOf
  }

  private make<T>(typeid: string, name: unknown, args: unknown[], local: unknown[] = args): T {
    const n = checkName(name)
    const scratch = validate(typeid, local)
    this.bridge().call(typeid, n, '__create', scratch ? [args[0], scratch.value] : args)
    return wrapProxy(new RedisCore(() => this.bridge(), typeid, n, this.url, scratch)) as T
  }

  private async coroMake<T>(typeid: string, name: unknown, args: unknown[], signal?: AbortSignal): Promise<T> {
    const n = checkName(name)
    const scratch = validate(typeid, args)
    await this.bridge().coroCall(typeid, n, '__create', scratch ? [args[0], scratch.value] : args, signal)
    return wrapProxy(new RedisCore(() => this.bridge(), typeid, n, this.url, scratch)) as T
  }

  AioQueue<T = unknown>(name: string, maxsize = 0, options?: object): AioQueueProxy<T> {
    return this.make('Queue', name, [maxsize], [maxsize, options])
  }
  AioJoinableQueue<T = unknown>(name: string, maxsize = 0, options?: object): AioJoinableQueueProxy<T> {
    return this.make('JoinableQueue', name, [maxsize], [maxsize, options])
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
  /** A Condition over its own Redis RLock (a lock of another context cannot guard it). */
  AioCondition(name: string, lock?: never): AioConditionProxy {
    return this.make('Condition', name, [], lock === undefined ? [] : [lock])
  }
  /** A Barrier; an `action` cannot be shared through Redis (run it where wait() returned 0). */
  AioBarrier(name: string, parties: number, action?: null, timeout: number | null = null): AioBarrierProxy {
    return this.make('Barrier', name, [parties, undefined, timeout], [parties, action ?? undefined, timeout])
  }
  /** A Value of a ctypes typecode: what it holds is what a local AioValue of that typecode would (wrapping, bytes for 'c'). */
  AioValue(name: string, typecode: string, value?: unknown, options?: { lock?: boolean }): AioValueProxy {
    return this.make('Value', name, [typecode, value], [typecode, value, options])
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

  /** A pool whose workers run anywhere: start them with `npx aioprocessing-worker --url ... --namespace ... --pool <name> --module ./tasks.js`. */
  AioPool(name: string, options: RedisPoolOptions = {}): RedisPool {
    return new RedisPool(() => this.bridge(), checkName(name), options)
  }

  /** The awaitable form of the factories: `await ctx.coro_make('Queue', 'jobs', [maxsize], { signal })`. */
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
export { runWorker, type WorkerOptions } from './worker.js'

export function redisContext(options: RedisContextOptions = {}): RedisContext {
  return new RedisContext(options)
}
