// The results of a pool's calls: AsyncResultCore (applyAsync, mapAsync) and IMapCore (imap), on a
// shared Job base that takes its tasks' answers. They reach their pool only through ResultHost,
// so that they can live apart from it.

import { PENDING, type Pending, type Waiter } from '../core/wait.js'
import { PoolTerminatedError, ValueError } from '../core/errors.js'
import { EV } from './pool-protocol.js'
import type { CountedRef } from '../core/destination.js'

/** Options of applyAsync / mapAsync / starmapAsync. */
export interface AsyncOptions<R> {
  /** Called once with the result (the whole list for a map) when the task succeeds. */
  callback?: (result: R) => void
  /** Called once with the error when it fails. */
  errorCallback?: (error: unknown) => void
}

/** What a result needs of its pool. */
export interface ResultHost {
  /** The pool's words (see pool-protocol.ts): a result waits on EV as the pool does. */
  readonly events: Int32Array
  /** Does all the pool's pending work now (takes arrived answers). */
  pump(): void
  /** Parks `w` on EV, read as `seq` before the pump ran. */
  sleep(w: Waiter, seq: number): Pending
  /** Runs `fn` after the pump, outside it. */
  later(fn: () => void): void
  /** A coro_ waiter relies on the pool's handler loop: makes sure it runs. */
  keepPumping(): void
  /** Takes back a cancelled job's queued tasks. */
  withdraw(job: Job): void
  /** The workers are processes: task arguments must be portable (proxies, not thread-context objects). */
  readonly portable: boolean
}

/** One unit sent to a worker: a call or a chunk of a map. */
export interface Task {
  id: number
  job: Job
  /** Position of this chunk in its job. */
  index: number
  fnId: number
  /** The encoded OP_TASK message. */
  bytes: Buffer
  /** It carries shared objects: the worker loads the library's classes before decoding it. */
  shared: boolean
  /**
   * References to its arguments' manager proxies counted for it while it is in the pool, given
   * back when it leaves (answered, lost, withdrawn); the worker that rebuilds them counts its own
   * (core/destination.ts REBUILDER).
   */
  counted?: CountedRef[]
}

/** What a job does with its chunks' results. */
export abstract class Job implements Waiter {
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

  constructor(readonly pool: ResultHost) {
    this.i32 = pool.events
  }

  abstract taskDone(index: number, ok: boolean, value: unknown): void

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
  /** A task failed: `error` is its error (which may be anything thrown, undefined included). */
  private failed = false
  constructor(pool: ResultHost, chunks: number, isMap: boolean, private readonly options: AsyncOptions<R>) {
    super(pool)
    this.remaining = chunks
    if (isMap) this.results = new Array(chunks)
    if (chunks === 0) this.finish(1, [])
  }

  taskDone(index: number, ok: boolean, value: unknown): void {
    if (this.status !== 0) return
    // Python keeps the first error. A flag, not `error === undefined`: `throw undefined` is an error.
    if (!ok && !this.failed) {
      this.failed = true
      this.error = value
    }
    if (ok && this.results) this.results[index] = value
    else if (ok) this.value = value
    if (--this.remaining > 0) return
    // Python's map does not fail fast: it reports the first error once every chunk has ended.
    if (this.failed) this.finish(2, this.error)
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

  constructor(pool: ResultHost, private total: number, private readonly ordered: boolean, private readonly chunked: boolean) {
    super(pool)
    this.remaining = total
  }

  taskDone(index: number, ok: boolean, value: unknown): void {
    this.remaining--
    if (this.ordered) this.chunks.set(index, { ok, value })
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
  }}
