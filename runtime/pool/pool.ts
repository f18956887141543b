// AioPool (Python's multiprocessing.Pool) on the 'thread' start method: worker processes fed
// through one pipe each, and one word the pool sleeps on. This file is its public face: the
// options, the checks of each call, and the jobs it makes; the parts are beside it:
//
//   pool-protocol.ts the pool ⇄ worker wire: shared words, messages, batch framing
//   results.ts       AsyncResultCore and IMapCore, the results a call returns
//   dispatch.ts      chunking, the task queue, batches sent ahead, and the pump that runs it all
//   worker-slots.ts  the workers: started, and replaced when they end
//   pool-loop.ts     the loop each worker runs (pool-worker.ts names it)
//
// Every worker has a duplex pipe (connection.ts): tasks go down it, results come back up it, each
// result written the moment its task ends. The pool thread waits on word EV of its own buffer,
// which a worker bumps when it has results for the pool and the supervisor bumps when a worker
// ends, so one sleep covers every worker and every kind of news.
//
// A worker that ends mid-task (process.exit, a crash, out of memory) fails exactly the task it
// was running: it stores the task's id in its CURRENT word before running it, and the tasks sent
// after that one go back to the front of the queue for the replacement worker.

import { availableParallelism } from 'node:os'
import { supervisorWorker, targetOf, threadsAhead, type Target } from '../process/process.js'
import { PENDING, type Pending, type Waiter } from '../core/wait.js'
import { wrapCore } from '../core/transfer.js'
import { ValueError } from '../core/errors.js'
import type { ResourceLimits } from 'node:worker_threads'
import type { FunctionRef } from '../core/source.js'
import { EV, MODE_APPLY, MODE_MAP, MODE_STARMAP, POOL_WORDS, POOL_WORKER_TARGET } from './pool-protocol.js'
import { AsyncResultCore, IMapCore, type AsyncOptions, type Job } from './results.js'
import { CLOSE, Dispatcher, RUN, checkChunksize, chunkTasks, defaultChunksize, makeTask } from './dispatch.js'

export type { AsyncOptions } from './results.js'

export interface PoolOptions {
  /** Worker count; defaults to the number of CPUs (`os.availableParallelism()`). */
  processes?: number | null
  /** Runs once in each worker before its first task: a self-contained function or `{ module, name }`. */
  initializer?: Target | null
  initargs?: unknown[]
  /** A worker retires after this many tasks (a chunk counts as one) and a fresh one replaces it. */
  maxtasksperchild?: number | null
  /**
   * 'thread' (the default): workers are worker threads. 'spawn' (or `getContext('spawn')`): workers
   * are Node processes, for isolation (a crash, memory, `process.chdir`, a hard kill); task
   * arguments may hold spawn-context objects and manager proxies, not thread-context ones.
   */
  context?: 'thread' | 'spawn' | { getStartMethod(): string } | null
  /** Node's worker resource limits for every worker (e.g. `{ maxOldGenerationSizeMb: 64 }`). */
  resourceLimits?: ResourceLimits
  /** Modules each worker imports before its first task (see ProcessOptions.preload: `['tsx/esm/api']` for TypeScript tasks). */
  preload?: (string | URL)[]
}

/** A task function: self-contained (it crosses as source text) or a module export; it may be async. */
/** A task: an inline function (its parameters `A` check the args it is given) or `{ module, name }`. */
export type PoolFunction<R = unknown, A extends unknown[] = any[]> = ((...args: A) => R | PromiseLike<R>) | { module: string | URL; name?: string }

const STATE_NAMES = ['RUN', 'CLOSE', 'TERMINATE']
/** The first module of a first pool's threads, which may run the pool's first task before the library loads (first-task.ts). */
const FIRST_TASK_MODULE = new URL('./first-task.js', import.meta.url)

export class PoolCore implements Waiter {
  readonly i32: Int32Array
  waitIndex = EV
  waitValue = 0
  waitCapMs?: number
  readonly processes: number
  private readonly dispatcher: Dispatcher
  private readonly fnIds = new Map<string, number>()
  private readonly fnByObject = new WeakMap<object, number>()
  private readonly fnRefs: FunctionRef[] = []
  private readonly preload: PoolOptions['preload']

  constructor(options: PoolOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
    const { processes, initializer, initargs = [], maxtasksperchild, context, resourceLimits, preload } = options
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
    const startMethod = typeof context === 'string' ? context : context === undefined || context === null ? 'thread' : (context as { getStartMethod?: () => string }).getStartMethod?.()
    if (startMethod !== 'thread' && startMethod !== 'spawn') {
      throw new ValueError(`context must be 'thread', 'spawn' or a context from getContext(), not ${typeof context === 'string' ? `'${context}'` : String(context)}`)
    }
    this.processes = n
    this.preload = preload
    const initTarget = initializer ? targetOf(initializer, 'initializer', preload) : null
    // What boots longest starts first, and the rest is done while it boots: a first pool's
    // threads, or the supervisor thread that starts a process pool's processes (~25 ms).
    // A first task is offered to the threads while they boot (first-offer.ts), unless something
    // must run before it: an initializer, a preload (a loader the task's module may need). Nor
    // with maxtasksperchild, which counts tasks in the worker's loop.
    const offers = initTarget === null && !preload?.length && !maxtasksperchild
    const ahead = startMethod === 'thread' ? threadsAhead(n, resourceLimits, offers ? { module: FIRST_TASK_MODULE, boot: POOL_WORKER_TARGET.module } : undefined) : []
    if (startMethod === 'spawn') supervisorWorker()
    let dispatcher: Dispatcher | undefined
    try {
      const settings = { events: new SharedArrayBuffer(POOL_WORDS * 4), initializer: initTarget, initargs, maxtasks: maxtasksperchild ?? 0, resourceLimits, preload, startMethod } as const
      dispatcher = new Dispatcher(settings, n, this.fnRefs)
      dispatcher.slots.fill(n, [...ahead])
      dispatcher.watchIdle()
    } catch (error) {
      // Python terminates the workers already started (none are leaked).
      for (const w of dispatcher?.slots.list ?? []) w.proc.kill()
      for (const a of ahead) {
        void a.worker.terminate()
        a.offers?.close()
      }
      throw error
    }
    this.dispatcher = dispatcher
    this.i32 = dispatcher.events
  }

  private checkRunning(): void {
    if (this.dispatcher.state !== RUN) throw new ValueError('Pool not running')
  }

  private fnId(fn: Target): number {
    // An inline lambda is a new object on every call: known by identity first, then by its
    // source, so that it is sent to each worker (and compiled there) once.
    if (typeof fn === 'function') {
      const known = this.fnByObject.get(fn)
      if (known !== undefined) return known
    }
    const ref = targetOf(fn, 'func', this.preload)
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

  /** A result's first look: no pump, so that a run of submissions is sent as one batch. */
  peek(job: AsyncResultCore<any>): unknown {
    return job.status === 0 ? PENDING : job.getAttempt()
  }

  applyBegin<R>(fn: Target, args: unknown[] = [], options: AsyncOptions<R> = {}): AsyncResultCore<R> {
    this.checkRunning()
    if (!Array.isArray(args)) throw new TypeError('args must be an array')
    checkCallbacks(options)
    const fnId = this.fnId(fn)
    const job = new AsyncResultCore<R>(this.dispatcher, 1, false, options)
    this.dispatcher.submit([makeTask(job, 0, fnId, MODE_APPLY, [args], -1)])
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
    const job = new AsyncResultCore<R[]>(this.dispatcher, chunks, true, options)
    this.dispatcher.submit(chunkTasks(job, fnId, star ? MODE_STARMAP : MODE_MAP, items, size, chunks))
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
    const job = new IMapCore<R>(this.dispatcher, whole, ordered, size > 1)
    job.inputError = inputError
    this.dispatcher.submit(chunkTasks(job, fnId, size === 1 ? MODE_APPLY : MODE_MAP, items, size, whole))
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

  // --- the end ---------------------------------------------------------------------------------

  close(): void {
    if (this.dispatcher.state === RUN) this.dispatcher.state = CLOSE
    this.dispatcher.schedule()
  }

  terminate(): void {
    this.dispatcher.terminate()
  }

  joinAttempt(): undefined | Pending {
    if (this.dispatcher.state === RUN) throw new ValueError('Pool is still running')
    const seq = Atomics.load(this.i32, EV)
    this.dispatcher.pump()
    if (this.dispatcher.slots.list.length === 0) return undefined
    return this.dispatcher.sleep(this, seq)
  }

  describe(): string {
    return `state=${STATE_NAMES[this.dispatcher.state]} pool_size=${this.processes}`
  }

  /** The workers' pids (thread ids in the thread context, OS pids in the spawn context), for tests and diagnostics. */
  get pids(): (number | null)[] {
    return this.dispatcher.slots.list.map((w) => w.proc.pid)
  }

  /** Tasks submitted and not yet answered or withdrawn. */
  get pendingTasks(): number {
    return this.dispatcher.outstanding
  }
}

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

