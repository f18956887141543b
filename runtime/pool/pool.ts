// AioPool (Python's multiprocessing.Pool) on the 'thread' start method: worker processes fed
// through one pipe each, and one word the pool sleeps on.
//
// Every worker has a duplex pipe (connection.ts): tasks go down it, results come back up it, each
// result written the moment its task ends. The pool thread waits on word EV of its own buffer,
// which a worker bumps when it has results for the pool and the supervisor bumps when a worker
// ends, so one sleep covers every worker and every kind of news.
//
// Nothing here runs in a thread of its own. `pump()` does all of the pool's work: it takes the
// results that arrived, notices workers that ended (and replaces them), and sends queued tasks
// to workers with room. A blocking get() or join() runs it in its own wait loop; in the event
// loop a handler loop runs it while any task is outstanding, as Python's three pool threads do.
//
// Tasks are pipelined: a worker has up to `depth` tasks sent ahead, so trivial tasks cost no
// wake-up each; the depth adapts to the measured task time, so that long tasks are not stuck
// behind each other in one worker while another idles.
//
// A worker that ends mid-task (process.exit, a crash, out of memory) fails exactly the task it
// was running: it stores the task's id in its CURRENT word before running it, and the tasks sent
// after that one go back to the front of the queue for the replacement worker.

import { availableParallelism } from 'node:os'
import { ProcessCore, targetOf, type Target } from '../process/process.js'
import { ConnectionCore, SendState } from '../ipc/connection.js'
import { GetState } from '../ipc/queue.js'
import { PENDING, coroBlockOn, park, type Pending, type Waiter } from '../core/wait.js'
import { encode, encoded, sharedWritten } from '../ipc/serialize.js'
import { wrapCore } from '../core/transfer.js'
import { NotImplementedError, PoolTerminatedError, ValueError, WorkerLostError } from '../core/errors.js'
import { rebuildError, type ErrorRecord } from '../core/remote-error.js'
import type { ResourceLimits } from 'node:worker_threads'
import type { FunctionRef } from '../core/source.js'

// The pool's words.
const EV = 0
/**
 * 1 while the pool is about to sleep or sleeping: a worker then announces each result at once.
 * The pool raises it, then looks for results once more; a worker writes a result, then reads it.
 * So either the worker sees it raised, or the pool sees the result: none waits unannounced.
 */
export const WAITING = 1

// A worker's words (shared with pool-worker.ts).
export const CURRENT = 0 // id of the task the worker is running, 0 between tasks
export const SENT = 1 // tasks the pool has sent to this worker
export const DONE = 2 // tasks the worker has finished
export const LOW_WATER = 3 // the worker bumps EV once SENT - DONE falls to this (so it never starves)
export const WORKER_WORDS = 4

// Messages to a worker: [op, ...].
export const OP_DEFINE = 0 // [op, fnId, FunctionRef]
export const OP_TASK = 1 // [op, taskId, fnId, mode, items]
export const OP_STOP = 2 // [op]
/** Set in a batched message's length when it carries shared objects (see sendBatch). */
export const SHARED_FLAG = 0x80000000
// Task modes.
export const MODE_APPLY = 0 // items = [args]: one call fn(...args), the result is its value
export const MODE_MAP = 1 // items = [x...]: fn(x) each, the result is the list
export const MODE_STARMAP = 2 // items = [[...args]...]: fn(...args) each, the result is the list
// A result message: [taskId, ok, value | ErrorRecord, microseconds].

/** Pipe ring size per direction and worker. */
const PIPE_CAPACITY = 128 * 1024
/** Tasks sent ahead to one worker: bounds, and how much work (µs) to keep queued in each. */
const MIN_DEPTH = 2
const MAX_DEPTH = 256
const FIRST_DEPTH = 16
const QUEUED_WORK_US = 2000

export interface PoolOptions {
  /** Worker count; defaults to the number of CPUs (`os.availableParallelism()`). */
  processes?: number | null
  /** Runs once in each worker before its first task: a self-contained function or `{ module, name }`. */
  initializer?: Target | null
  initargs?: unknown[]
  /** A worker retires after this many tasks (a chunk counts as one) and a fresh one replaces it. */
  maxtasksperchild?: number | null
  /** Only 'thread' (the default) and the thread context object are accepted. */
  context?: unknown
  /** Node's worker resource limits for every worker (e.g. `{ maxOldGenerationSizeMb: 64 }`). */
  resourceLimits?: ResourceLimits
}

/** A task function: self-contained (it crosses as source text) or a module export; it may be async. */
export type PoolFunction<R = unknown> = ((...args: any[]) => R | PromiseLike<R>) | { module: string | URL; name?: string }

/** Options of applyAsync / mapAsync / starmapAsync. */
export interface AsyncOptions<R> {
  /** Called once with the result (the whole list for a map) when the task succeeds. */
  callback?: (result: R) => void
  /** Called once with the error when it fails. */
  errorCallback?: (error: unknown) => void
}

const RUN = 0
const CLOSE = 1
const TERMINATE = 2
const STATE_NAMES = ['RUN', 'CLOSE', 'TERMINATE']

/** One unit sent to a worker: a call or a chunk of a map. */
interface Task {
  id: number
  job: Job
  /** Position of this chunk in its job. */
  index: number
  fnId: number
  /** The encoded OP_TASK message. */
  bytes: Buffer
  /** It carries shared objects: the worker loads the library's classes before decoding it. */
  shared: boolean
}

class WorkerSlot {
  readonly conn: ConnectionCore
  readonly words = new Int32Array(new SharedArrayBuffer(WORKER_WORDS * 4))
  readonly proc: ProcessCore
  /** Tasks sent and not answered, oldest first. */
  readonly inflight: Task[] = []
  inflightHead = 0
  /** Function ids this worker has been sent. */
  readonly known = new Set<number>()
  readonly recv: GetState
  /** A message partly in the pipe (the ring was full): it must finish before the next. */
  sending: SendState | undefined
  /** Tasks assigned to this worker over its life (for maxtasksperchild). */
  assigned = 0
  stopping = false
  stopped = false

  constructor(pool: PoolCore, n: number) {
    const [mine, theirs] = ConnectionCore.pipe(true, PIPE_CAPACITY)
    this.conn = mine
    this.recv = mine.recvBegin()
    this.words[LOW_WATER] = FIRST_DEPTH >> 1
    this.proc = new ProcessCore({
      target: { module: new URL('./pool-worker.js', import.meta.url).href, name: 'poolWorker' },
      args: [{
        rx: theirs.rx!.i32.buffer, tx: theirs.tx!.i32.buffer, words: this.words.buffer, events: pool.events.buffer,
        initializer: pool.initializer, initargs: pool.initargs, maxtasks: pool.maxtasks,
      }],
      name: `PoolWorker-${n}`,
      daemon: true,
      resourceLimits: pool.resourceLimits,
      exitNotify: pool.events.buffer as SharedArrayBuffer,
      lazyRegistry: true,
    })
    this.proc.start()
  }

  get pending(): number {
    return this.inflight.length - this.inflightHead
  }
  shift(): Task | undefined {
    if (this.inflightHead >= this.inflight.length) return undefined
    const t = this.inflight[this.inflightHead++]
    if (this.inflightHead > 1024 && this.inflightHead * 2 > this.inflight.length) {
      this.inflight.splice(0, this.inflightHead)
      this.inflightHead = 0
    }
    return t
  }
  /** Tasks still in flight, in order, emptying the list. */
  takeAll(): Task[] {
    const rest = this.inflight.slice(this.inflightHead)
    this.inflight.length = 0
    this.inflightHead = 0
    return rest
  }
}

let nextTaskId = 1

/** What a job does with its chunks' results. */
abstract class Job implements Waiter {
  readonly i32: Int32Array
  waitIndex = EV
  waitValue = 0
  waitCapMs?: number
  /** 0 pending, 1 succeeded, 2 failed. */
  status = 0
  value: unknown
  error: unknown
  cancelled = false
  /** Chunks not yet answered. */
  remaining = 0
  private settledPromise: Promise<void> | undefined
  private settle: (() => void) | undefined

  constructor(readonly pool: PoolCore) {
    this.i32 = pool.events
  }

  abstract taskDone(task: Task, ok: boolean, value: unknown): void

  static unavailable(): never {
    throw new TypeError('pool results come from AioPool methods (applyAsync, mapAsync, imap...), not from new')
  }

  /** Promise that settles when something changes for a coro_ waiter (a result, the end). */
  changed(): Promise<void> {
    this.pool.keepPumping()
    if (!this.settledPromise) this.settledPromise = new Promise((resolve) => (this.settle = resolve))
    return this.settledPromise
  }
  protected notifyChange(): void {
    if (this.settle) {
      const s = this.settle
      this.settledPromise = undefined
      this.settle = undefined
      s()
    }
  }

  /** Abort of a coro_ wait: queued chunks are withdrawn, and answers still coming are dropped. */
  cancel(): undefined {
    if (this.status !== 0) return undefined
    this.cancelled = true
    this.pool.withdraw(this)
    return undefined
  }
  /** The pool was terminated: every waiter is told. */
  abstract terminated(): void
}

/** The result of applyAsync and mapAsync (Python's AsyncResult / MapResult). */
export class AsyncResultCore<R = unknown> extends Job {
  private readonly results: unknown[] | undefined
  constructor(pool: PoolCore, chunks: number, isMap: boolean, private readonly options: AsyncOptions<R>) {
    super(pool)
    this.remaining = chunks
    if (isMap) this.results = new Array(chunks)
    if (chunks === 0) this.finish(1, [])
  }

  taskDone(task: Task, ok: boolean, value: unknown): void {
    if (this.status !== 0) return
    if (!ok && this.error === undefined) this.error = value // Python keeps the first error
    if (ok && this.results) this.results[task.index] = value
    else if (ok) this.value = value
    if (--this.remaining > 0) return
    // Python's map does not fail fast: it reports the first error once every chunk has ended.
    if (this.error !== undefined) this.finish(2, this.error)
    else this.finish(1, this.results ? (this.results as unknown[][]).flat() : this.value)
  }

  private finish(status: 1 | 2, value: unknown): void {
    this.status = status
    if (status === 1) this.value = value
    else this.error = value
    this.notifyChange()
    if (this.cancelled) return
    const cb = status === 1 ? this.options.callback : this.options.errorCallback
    if (cb) this.pool.later(() => cb(value as R))
  }

  terminated(): void {
    if (this.status === 0) this.finish(2, new PoolTerminatedError())
  }

  getAttempt(): R | Pending {
    if (this.status === 0) {
      const seq = Atomics.load(this.i32, EV)
      this.pool.pump()
      if (this.status === 0) return this.pool.sleep(this, seq)
    }
    if (this.status === 1) return this.value as R
    throw this.error
  }

  waitAttempt(): undefined | Pending {
    if (this.status === 0) {
      const seq = Atomics.load(this.i32, EV)
      this.pool.pump()
      if (this.status === 0) return this.pool.sleep(this, seq)
    }
    return undefined
  }

  ready(): boolean {
    if (this.status === 0) this.pool.pump()
    return this.status !== 0
  }

  successful(): boolean {
    if (!this.ready()) throw new ValueError(`${this.describe()} not ready`)
    return this.status === 1
  }

  describe(): string {
    return this.status === 0 ? 'pending' : this.status === 1 ? 'ready, successful' : 'ready, failed'
  }
}

/** The iterator of imap / imapUnordered (Python's IMapIterator). */
export class IMapCore<R = unknown> extends Job {
  /** Answers by chunk index (ordered) or in arrival order (unordered). */
  private readonly chunks = new Map<number, { ok: boolean; value: unknown }>()
  private readonly arrived: { ok: boolean; value: unknown }[] = []
  private nextChunk = 0
  private buffer: unknown[] = []
  private bufferAt = 0
  private ended = false
  /** An error of the input iterable: thrown after the chunks made before it. */
  inputError: { error: unknown } | undefined

  constructor(pool: PoolCore, private total: number, private readonly ordered: boolean, private readonly chunked: boolean) {
    super(pool)
    this.remaining = total
  }

  taskDone(task: Task, ok: boolean, value: unknown): void {
    this.remaining--
    if (this.ordered) this.chunks.set(task.index, { ok, value })
    else this.arrived.push({ ok, value })
    this.notifyChange()
  }

  terminated(): void {
    if (this.remaining > 0) {
      this.remaining = 0
      this.inputError = { error: new PoolTerminatedError() }
      this.total = this.nextChunk // nothing more will come
      this.chunks.clear()
      this.arrived.length = 0
      this.notifyChange()
    }
  }

  /** The next result, `{ done: true }` at the end, a thrown error for a failed task; PENDING to wait. */
  private take(): IteratorResult<R> | Pending {
    if (this.bufferAt < this.buffer.length) return { value: this.buffer[this.bufferAt++] as R, done: false }
    if (this.ended) return { value: undefined, done: true }
    let answer: { ok: boolean; value: unknown } | undefined
    if (this.ordered) {
      answer = this.chunks.get(this.nextChunk)
      if (answer) this.chunks.delete(this.nextChunk)
    } else answer = this.arrived.shift()
    if (answer) {
      this.nextChunk++
      if (!answer.ok) {
        // Python's chunked imap is a generator over chunks: a failed chunk ends it.
        if (this.chunked) this.ended = true
        throw answer.value
      }
      this.buffer = this.chunked ? (answer.value as unknown[]) : [answer.value]
      this.bufferAt = 0
      return this.take()
    }
    if (this.nextChunk >= this.total) {
      this.ended = true
      if (this.inputError) throw this.inputError.error
      return { value: undefined, done: true }
    }
    return PENDING
  }

  nextAttempt(): IteratorResult<R> | Pending {
    let r = this.take()
    if (r !== PENDING) return r
    const seq = Atomics.load(this.i32, EV)
    this.pool.pump()
    r = this.take()
    if (r !== PENDING) return r
    return this.pool.sleep(this, seq)
  }

  describe(): string {
    return `${this.ordered ? 'ordered' : 'unordered'}, ${this.nextChunk}/${this.total} chunks taken`
  }
}

/** Python's rule: ceil(n / (4 × workers)). */
function defaultChunksize(n: number, workers: number): number {
  const [q, r] = [Math.floor(n / (workers * 4)), n % (workers * 4)]
  return r ? q + 1 : q
}

function checkChunksize(chunksize: unknown): number | undefined {
  if (chunksize === undefined || chunksize === null) return undefined
  if (typeof chunksize !== 'number' || !Number.isInteger(chunksize)) throw new TypeError(`chunksize must be an integer, not ${String(chunksize)}`)
  if (chunksize < 1) throw new ValueError(`Chunksize must be 1+, not ${chunksize}`)
  return chunksize
}

export class PoolCore implements Waiter {
  readonly events = new Int32Array(new SharedArrayBuffer(8))
  readonly i32 = this.events
  waitIndex = EV
  waitValue = 0
  waitCapMs?: number
  readonly processes: number
  readonly initializer: FunctionRef | null
  readonly initargs: unknown[]
  readonly maxtasks: number
  readonly resourceLimits: ResourceLimits | undefined
  private state = RUN
  private readonly workers: WorkerSlot[] = []
  private workerCount = 0
  /** Tasks waiting for a worker, oldest first (requeued ones go to the front). */
  private queue: Task[] = []
  private queueHead = 0
  /** Tasks submitted and not yet answered or withdrawn. */
  private outstanding = 0
  private readonly fnIds = new Map<string, number>()
  private readonly fnByObject = new WeakMap<object, number>()
  private readonly fnRefs: FunctionRef[] = []
  private pumping = false
  private callbacks: (() => void)[] = []
  private handlerRunning = false
  private pumpScheduled = false
  /** Exponential average of one task's run time in µs, as the workers measure it. */
  private taskMicros = -1
  private depth = FIRST_DEPTH

  constructor(options: PoolOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
    const { processes, initializer, initargs = [], maxtasksperchild, context, resourceLimits } = options
    const n = processes ?? availableParallelism()
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new TypeError(`processes must be an integer, not ${String(n)}`)
    if (n < 1) throw new ValueError('Number of processes must be at least 1')
    if (maxtasksperchild !== undefined && maxtasksperchild !== null && (typeof maxtasksperchild !== 'number' || !Number.isInteger(maxtasksperchild) || maxtasksperchild < 1)) {
      throw new ValueError('maxtasksperchild must be a positive int or None')
    }
    if (initializer !== undefined && initializer !== null && typeof initializer !== 'function' && !(typeof initializer === 'object' && 'module' in initializer)) {
      throw new TypeError('initializer must be a callable: a self-contained function or { module, name }')
    }
    if (!Array.isArray(initargs)) throw new TypeError('initargs must be an array')
    if (context !== undefined && context !== null && context !== 'thread' && (context as { getStartMethod?: () => string }).getStartMethod?.() !== 'thread') {
      throw new NotImplementedError('AioPool runs on the thread start method only')
    }
    this.processes = n
    this.initializer = initializer ? targetOf(initializer, 'initializer') : null
    this.initargs = initargs
    this.maxtasks = maxtasksperchild ?? 0
    this.resourceLimits = resourceLimits
    try {
      for (let i = 0; i < n; i++) this.spawn()
    } catch (error) {
      // Python terminates the workers already started (none are leaked).
      for (const w of this.workers) w.proc.kill()
      throw error
    }
  }

  private spawn(): void {
    this.workers.push(new WorkerSlot(this, ++this.workerCount))
  }

  private checkRunning(): void {
    if (this.state !== RUN) throw new ValueError('Pool not running')
  }

  private fnId(fn: Target): number {
    // An inline lambda is a new object on every call: known by identity first, then by its
    // source, so that it is sent to each worker (and compiled there) once.
    if (typeof fn === 'function') {
      const known = this.fnByObject.get(fn)
      if (known !== undefined) return known
    }
    const ref = targetOf(fn, 'func')
    const key = 'source' in ref ? ref.source : `${ref.module}#${ref.name}`
    let id = this.fnIds.get(key)
    if (id === undefined) {
      id = this.fnRefs.length
      this.fnRefs.push(ref)
      this.fnIds.set(key, id)
    }
    if (typeof fn === 'function') this.fnByObject.set(fn, id)
    return id
  }

  // --- submitting ------------------------------------------------------------------------------

  private makeTask(job: Job, index: number, fnId: number, mode: number, items: unknown[]): Task {
    const id = nextTaskId++
    const before = sharedWritten()
    const n = encode([OP_TASK, id, fnId, mode, items], 'args')
    return { id, job, index, fnId, bytes: Buffer.from(encoded().subarray(0, n)), shared: sharedWritten() !== before }
  }

  private submit(tasks: Task[]): void {
    for (const t of tasks) this.queue.push(t)
    this.outstanding += tasks.length
    this.schedule()
  }

  /** A coro_ waiter relies on the handler loop: make sure it runs. */
  keepPumping(): void {
    if (!this.handlerRunning && this.outstanding > 0) this.schedule()
  }

  /** A result's first look: no pump, so that a run of submissions is sent as one batch. */
  peek(job: AsyncResultCore<any>): unknown {
    return job.status === 0 ? PENDING : job.getAttempt()
  }

  /** Runs the pump soon, and keeps a handler loop running while work is outstanding. */
  private schedule(): void {
    // In a microtask, so that tasks submitted in one synchronous run go out in one batch.
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    queueMicrotask(() => {
      this.pumpScheduled = false
      if (this.handlerRunning || this.outstanding === 0 || this.state === TERMINATE) {
        this.pump()
        return
      }
      this.handlerRunning = true
      void coroBlockOn(this, () => this.handlerAttempt(), Infinity, () => undefined, undefined).finally(() => {
        this.handlerRunning = false
        if (this.outstanding > 0 && this.state !== TERMINATE) this.schedule()
      })
    })
  }

  private handlerAttempt(): undefined | Pending {
    const seq = Atomics.load(this.events, EV)
    this.pump()
    if (this.outstanding === 0 || this.state === TERMINATE) return undefined
    return this.sleep(this, seq)
  }

  applyBegin<R>(fn: Target, args: unknown[] = [], options: AsyncOptions<R> = {}): AsyncResultCore<R> {
    this.checkRunning()
    if (!Array.isArray(args)) throw new TypeError('args must be an array')
    checkCallbacks(options)
    const fnId = this.fnId(fn)
    const job = new AsyncResultCore<R>(this, 1, false, options)
    this.submit([this.makeTask(job, 0, fnId, MODE_APPLY, [args])])
    return job
  }

  mapBegin<R>(fn: Target, iterable: Iterable<unknown>, chunksize?: number | null, options: AsyncOptions<R[]> = {}, star = false): AsyncResultCore<R[]> {
    this.checkRunning()
    checkCallbacks(options)
    const fnId = this.fnId(fn)
    const items = toArray(iterable)
    if (star) items.forEach((a, i) => { if (!Array.isArray(a)) throw new TypeError(`starmap items must be arrays of arguments; item ${i} is not`) })
    const size = checkChunksize(chunksize) ?? defaultChunksize(items.length, this.processes)
    const chunks = items.length === 0 ? 0 : Math.ceil(items.length / size)
    const job = new AsyncResultCore<R[]>(this, chunks, true, options)
    const tasks: Task[] = []
    for (let c = 0; c < chunks; c++) tasks.push(this.makeTask(job, c, fnId, star ? MODE_STARMAP : MODE_MAP, items.slice(c * size, (c + 1) * size)))
    this.submit(tasks)
    return job
  }

  imapBegin<R>(fn: Target, iterable: Iterable<unknown>, chunksize: number | null = 1, ordered = true): IMapCore<R> {
    this.checkRunning()
    const fnId = this.fnId(fn)
    const size = checkChunksize(chunksize) ?? 1
    if (iterable === null || typeof (iterable as Iterable<unknown>)[Symbol.iterator] !== 'function') throw new TypeError('iterable must be iterable')
    // The input is read now; an error it throws comes after the results of the chunks before it.
    const items: unknown[] = []
    let inputError: { error: unknown } | undefined
    try {
      for (const x of iterable) items.push(x)
    } catch (error) {
      inputError = { error }
    }
    const whole = inputError ? Math.floor(items.length / size) : Math.ceil(items.length / size)
    const job = new IMapCore<R>(this, whole, ordered, size > 1)
    job.inputError = inputError
    const tasks: Task[] = []
    for (let c = 0; c < whole; c++) {
      tasks.push(size === 1 ? this.makeTask(job, c, fnId, MODE_APPLY, [[items[c]]]) : this.makeTask(job, c, fnId, MODE_MAP, items.slice(c * size, (c + 1) * size)))
    }
    this.submit(tasks)
    return job
  }

  // --- what the generated AioPool calls ---------------------------------------------------------

  starmapBegin<R>(fn: Target, iterable: Iterable<unknown[]>, chunksize?: number | null): AsyncResultCore<R[]> {
    return this.mapBegin<R>(fn, iterable, chunksize, {}, true)
  }
  applyAsync<T>(fn: Target, args?: unknown[], options?: AsyncOptions<any>): T {
    return wrapCore<T>(this.applyBegin(fn, args, options))
  }
  mapAsync<T>(fn: Target, iterable: Iterable<unknown>, chunksize?: number | null, options?: AsyncOptions<any>): T {
    return wrapCore<T>(this.mapBegin(fn, iterable, chunksize, options))
  }
  starmapAsync<T>(fn: Target, iterable: Iterable<unknown[]>, chunksize?: number | null, options?: AsyncOptions<any>): T {
    return wrapCore<T>(this.mapBegin(fn, iterable, chunksize, options, true))
  }
  imap<T>(fn: Target, iterable: Iterable<unknown>, chunksize?: number | null): T {
    return wrapCore<T>(this.imapBegin(fn, iterable, chunksize ?? 1, true))
  }
  imapUnordered<T>(fn: Target, iterable: Iterable<unknown>, chunksize?: number | null): T {
    return wrapCore<T>(this.imapBegin(fn, iterable, chunksize ?? 1, false))
  }
  resultAttempt(job: AsyncResultCore<any>): unknown {
    return job.getAttempt()
  }
  changed(job: Job): Promise<void> {
    return job.changed()
  }
  /** Abort of a coro_ call: its result is never wanted (typed any: the generated twin discards it). */
  cancel(job: Job): any {
    return job.cancel()
  }

  // --- the pump --------------------------------------------------------------------------------

  /**
   * Parks `w` on EV (read as `seq` before the pump ran), after raising WAITING and looking for
   * results once more (see WAITING). The sleep is short while a message is half in a pipe (the
   * worker frees room silently).
   */
  sleep(w: Waiter, seq: number): Pending {
    Atomics.store(this.events, WAITING, 1)
    if (this.workers.some((s) => s.conn.rx!.readable())) Atomics.add(this.events, EV, 1) // sleep returns at once
    return park(w, this.events, EV, seq, this.sleepCap())
  }

  /** The longest sleep of a waiter: short while a message is half in a pipe (the worker frees room silently). */
  sleepCap(): number {
    return this.workers.some((w) => w.sending) ? 1 : Infinity
  }

  /** Runs `fn` after the pump, outside it (user callbacks may call the pool). */
  later(fn: () => void): void {
    this.callbacks.push(fn)
  }

  /** Does all the pool's pending work now; cheap when there is none. */
  pump(): void {
    if (this.pumping) return
    this.pumping = true
    Atomics.store(this.events, WAITING, 0)
    try {
      for (const w of this.workers) {
        if (Atomics.load(w.proc.i32, 0) === 2 /* STOPPED */) w.stopped = true
        this.drain(w)
      }
      this.reap()
      this.dispatch()
    } finally {
      this.pumping = false
    }
    if (this.callbacks.length) this.runCallbacks()
  }

  private runCallbacks(): void {
    const cbs = this.callbacks
    this.callbacks = []
    for (const cb of cbs) {
      try {
        cb()
      } catch (error) {
        // Python's result-handler thread would die of it; here it is reported and the pool goes on.
        process.stderr.write(`aioprocessing: an AioPool callback threw: ${(error as Error)?.stack ?? String(error)}\n`)
      }
    }
  }

  /** Takes every result that arrived from worker `w`. */
  private drain(w: WorkerSlot): void {
    if (w.pending === 0) return
    for (;;) {
      let msg: unknown
      try {
        msg = w.conn.recvAttempt(w.recv)
      } catch {
        return // the worker's end is gone; reap() handles what it left
      }
      if (msg === PENDING) return
      const [id, ok, value, micros] = msg as [number, boolean, unknown, number]
      const task = w.shift()
      if (!task || task.id !== id) throw new Error(`aioprocessing: pool protocol error: result for task ${id}, expected ${task?.id}`)
      this.taskMicros = this.taskMicros < 0 ? micros : this.taskMicros * 0.875 + micros * 0.125
      this.answer(task, ok, ok ? value : rebuildError(value as ErrorRecord, `pool worker ${w.proc.name} (thread ${w.proc.pid})`))
    }
  }

  private answer(task: Task, ok: boolean, value: unknown): void {
    this.outstanding--
    const job = task.job
    if (job.cancelled) return // an aborted coro_ call: its late answers are dropped
    job.taskDone(task, ok, value)
  }

  /** Handles workers that ended: fails the task one was running, requeues the rest, replaces it. */
  private reap(): void {
    for (let i = 0; i < this.workers.length; i++) {
      const w = this.workers[i]
      if (!w.stopped) continue
      this.drain(w) // anything it wrote before it ended
      const current = Atomics.load(w.words, CURRENT)
      const rest = w.takeAll()
      const requeue: Task[] = []
      for (const t of rest) {
        if (t.id === current) {
          const code = w.proc.exitcode
          const how =
            code === 1 ? 'it crashed or ran out of memory (exitcode 1)' :
            code === 13 ? 'the task awaited a promise that could never settle: nothing was left to keep the worker alive (exitcode 13)' :
            `exitcode ${code}`
          this.answer(t, false, new WorkerLostError(`the pool worker ${w.proc.name} ended while running this task (${how}); the task was not retried, and the pool goes on with a new worker`))
        } else requeue.push(t)
      }
      if (requeue.length) {
        this.queue = [...requeue, ...this.queue.slice(this.queueHead)]
        this.queueHead = 0
      }
      this.workers.splice(i--, 1)
    }
    if (this.state === TERMINATE) return
    // Python keeps the pool populated while it runs, and while a closed pool still has work.
    if (this.state === RUN || this.outstanding > 0) {
      while (this.workers.length < this.processes) this.spawn()
    }
  }

  /** Sends queued tasks to workers with room, the least loaded first. */
  private dispatch(): void {
    if (this.state === TERMINATE) return
    if (this.taskMicros >= 0) this.depth = Math.max(MIN_DEPTH, Math.min(MAX_DEPTH, Math.round(QUEUED_WORK_US / Math.max(this.taskMicros, 0.5))))
    for (const w of this.workers) {
      if (w.sending && !this.continueSend(w)) continue
    }
    while (this.queueHead < this.queue.length) {
      let best: WorkerSlot | undefined
      for (const w of this.workers) {
        if (w.stopped || w.stopping || w.sending) continue
        if (this.maxtasks && w.assigned >= this.maxtasks) continue
        // Refill only once half of the depth is done: batches stay large, wake-ups few.
        if (w.pending > this.depth >> 1) continue
        if (!best || w.pending < best.pending) best = w
      }
      if (!best) break
      // Fill the chosen worker up to its depth in one go: one wake-up for many tasks.
      let room = this.depth - best.pending
      if (this.maxtasks) room = Math.min(room, this.maxtasks - best.assigned)
      // Share what is queued fairly when it is less than every worker's room.
      const queued = this.queue.length - this.queueHead
      room = Math.min(room, Math.max(1, Math.ceil(queued / this.workers.length)))
      // One record carries the whole batch: one commit, one wake-up of the worker.
      const batch: Buffer[] = []
      const shared: boolean[] = []
      let added = 0
      while (room-- > 0 && this.queueHead < this.queue.length) {
        const task = this.queue[this.queueHead++]
        if (task.job.cancelled) {
          this.outstanding--
          continue
        }
        if (!best.known.has(task.fnId)) {
          best.known.add(task.fnId)
          const n = encode([OP_DEFINE, task.fnId, this.fnRefs[task.fnId]])
          batch.push(Buffer.from(encoded().subarray(0, n)))
          shared.push(false)
        }
        best.inflight.push(task)
        best.assigned++
        added++
        batch.push(task.bytes)
        shared.push(task.shared)
      }
      Atomics.add(best.words, SENT, added)
      Atomics.store(best.words, LOW_WATER, Math.max(1, this.depth >> 1))
      if (batch.length) this.sendBatch(best, batch, shared)
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    }
    if (this.state === CLOSE && this.outstanding === 0) {
      for (const w of this.workers) {
        if (!w.stopping && !w.sending) {
          w.stopping = true
          this.sendBatch(w, [STOP_MESSAGE])
        }
      }
    }
  }

  /**
   * Puts messages in the worker's pipe as one record (each a u32 length, its top bit set when the
   * message carries shared objects, then its bytes); one that
   * does not fit now is finished by later pumps, before anything else goes to that worker.
   */
  private sendBatch(w: WorkerSlot, messages: Buffer[], shared?: boolean[]): void {
    let size = 0
    for (const m of messages) size += 4 + m.length
    const record = Buffer.allocUnsafe(size)
    let at = 0
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]
      record.writeUInt32LE((m.length | (shared?.[i] ? SHARED_FLAG : 0)) >>> 0, at)
      m.copy(record, at + 4)
      at += 4 + m.length
    }
    const st = new SendState(w.conn.tx!.i32, record)
    try {
      if (w.conn.sendAttempt(st) === PENDING) w.sending = st
    } catch {
      // The worker is gone: reap() requeues what it was sent.
    }
  }

  private continueSend(w: WorkerSlot): boolean {
    try {
      if (w.conn.sendAttempt(w.sending!) === PENDING) return false
    } catch {
      // the worker is gone
    }
    w.sending = undefined
    return true
  }

  /** Takes back a cancelled job's queued tasks (its tasks already in workers are dropped on arrival). */
  withdraw(job: Job): void {
    const kept: Task[] = []
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const t = this.queue[i]
      if (t.job === job) this.outstanding--
      else kept.push(t)
    }
    this.queue = kept
    this.queueHead = 0
  }

  // --- the end ---------------------------------------------------------------------------------

  close(): void {
    if (this.state === RUN) this.state = CLOSE
    this.schedule()
  }

  terminate(): void {
    if (this.state === TERMINATE) return
    this.state = TERMINATE
    for (const w of this.workers) {
      if (!w.stopped) w.proc.terminate()
    }
    const jobs = new Set<Job>()
    for (let i = this.queueHead; i < this.queue.length; i++) jobs.add(this.queue[i].job)
    for (const w of this.workers) for (const t of w.takeAll()) jobs.add(t.job)
    this.queue = []
    this.queueHead = 0
    this.outstanding = 0
    for (const job of jobs) if (!job.cancelled) job.terminated()
    this.runCallbacks()
  }

  joinAttempt(): undefined | Pending {
    if (this.state === RUN) throw new ValueError('Pool is still running')
    const seq = Atomics.load(this.events, EV)
    this.pump()
    if (this.workers.length === 0) return undefined
    return this.sleep(this, seq)
  }



  describe(): string {
    return `state=${STATE_NAMES[this.state]} pool_size=${this.processes}`
  }

  /** The workers' pids (thread ids), for tests and diagnostics. */
  get pids(): (number | null)[] {
    return this.workers.map((w) => w.proc.pid)
  }

  /** Tasks submitted and not yet answered or withdrawn. */
  get pendingTasks(): number {
    return this.outstanding
  }

}

const STOP_MESSAGE = ((n) => Buffer.from(encoded().subarray(0, n)))(encode([OP_STOP]))

function checkCallbacks(options: AsyncOptions<never>): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object with callback and errorCallback')
  if (options.callback !== undefined && options.callback !== null && typeof options.callback !== 'function') throw new TypeError('callback must be a function')
  if (options.errorCallback !== undefined && options.errorCallback !== null && typeof options.errorCallback !== 'function') throw new TypeError('errorCallback must be a function')
}

function toArray(iterable: Iterable<unknown>): unknown[] {
  if (Array.isArray(iterable)) return iterable
  if (iterable === null || iterable === undefined || typeof (iterable as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`iterable must be iterable, not ${iterable === null ? 'null' : typeof iterable}`)
  }
  return [...iterable]
}

