// How tasks reach the workers and answers come back: chunking a job into tasks, the queue, the
// adaptive batches sent ahead to each worker, and the pump that does all of it. Apart from pool.ts
// so that the public surface reads without the machinery, and the machinery without the checks.
//
// Nothing here runs in a thread of its own. `pump()` does all of the pool's work: it takes the
// results that arrived, notices workers that ended (and replaces them), and sends queued tasks
// to workers with room. A blocking get() or join() runs it in its own wait loop; in the event
// loop a handler loop runs it while any task is outstanding, as Python's three pool threads do.
//
// Tasks are pipelined: a worker has up to `depth` tasks sent ahead, so trivial tasks cost no
// wake-up each; the depth adapts to the measured task time, so that long tasks are not stuck
// behind each other in one worker while another idles.

import { SendState } from '../ipc/connection.js'
import { PENDING, coroBlockOn, dueAt, park, type Pending, type Waiter } from '../core/wait.js'
import { decode, encodeCopy, sharedWritten } from '../ipc/serialize.js'
import { ProcessError, ValueError, WorkerLostError } from '../core/errors.js'
import { reduceItems } from '../core/transfer.js'
import { REBUILDER, reduceFor, releaseCounted } from '../core/destination.js'
import { rebuildError, type ErrorRecord } from '../core/remote-error.js'
import type { FunctionRef } from '../core/source.js'
import { EV, INIT_FAILED, LOW_WATER, MAX_TASK_BYTES, MODE_APPLY, OP_DEFINE, OP_STOP, OP_TASK, SENT, WAITING, frameBatch, type DefineMessage, type ResultMessage, type StopMessage, type TaskMessage, type TaskMode } from './pool-protocol.js'
import { crossesAlike, type FirstOffer } from './first-offer.js'
import { MAY_CALL_HELPER } from '../core/function-load.js'
import { receiveMessageOnPort } from 'node:worker_threads'
import type { Job, ResultHost, Task } from './results.js'
import { FIRST_DEPTH, WorkerSlots, type WorkerSettings, type WorkerSlot } from './worker-slots.js'

/** Tasks sent ahead to one worker: bounds, and how much work (µs) to keep queued in each. */
const MIN_DEPTH = 2
const MAX_DEPTH = 256
const QUEUED_WORK_US = 2000
/**
 * Worker starts in a row whose initializer threw before the pool gives up: it then starts no more
 * workers and fails every task with the initializer's error (Python's pool respawns forever).
 */
export const INIT_TRIES = 3
/** The first wait before starting again a worker that could not be started; it doubles up to the max. */
const START_RETRY_MS = 50
const START_RETRY_MAX_MS = 2000
/** A first task's message larger than this is not offered to the booting threads (first-offer.ts): it goes by the usual road. */
const OFFER_MAX_BYTES = 64 * 1024
/** How long terminate() gives a worker process to end on SIGTERM before it sends SIGKILL (ms). */
const KILL_GRACE_MS = 500

export const RUN = 0
export const CLOSE = 1
export const TERMINATE = 2
export type PoolState = typeof RUN | typeof CLOSE | typeof TERMINATE

let nextTaskId = 1

/**
 * A task of `job` (`first`: the index of its first item in the input; -1 for apply's args): its message encoded now, so that an argument that cannot be sent fails the
 * call. For worker processes, shared objects go as their records (proxies rebuild there; a
 * thread-context object is refused, naming its path and what to pass instead).
 */
export function makeTask(job: Job, index: number, fnId: number, mode: TaskMode, items: unknown[], first = 0): Task {
  // Its manager proxies are counted for it while it is in the pool (given back by left()), and by
  // the worker that rebuilds them (core/destination.ts REBUILDER).
  const { value: task, counted } = reduceFor(REBUILDER, () => encodeTask(job, index, fnId, mode, items, first))
  if (counted.length) task.counted = counted
  return task
}

function encodeTask(job: Job, index: number, fnId: number, mode: TaskMode, items: unknown[], first: number): Task {
  const id = nextTaskId++
  if (job.pool.portable) {
    const r = reduceTask(items, mode, first, true)
    const bytes = encodeCopy([OP_TASK, id, fnId, mode, r.items] satisfies TaskMessage, 'args')
    if (bytes.length > MAX_TASK_BYTES) throw new ValueError(`a task's arguments are ${bytes.length} bytes encoded, over the ${MAX_TASK_BYTES} a process pool's task may have (a thread pool's has no such limit): pass large data another way (a file, a smaller chunksize)`)
    return { id, job, index, fnId, bytes, shared: r.shared }
  }
  const before = sharedWritten()
  let bytes: Buffer
  try {
    bytes = encodeCopy([OP_TASK, id, fnId, mode, items] satisfies TaskMessage, 'args')
  } catch (error) {
    // The encoder names a value by its place in the message (args[4][0][1]); the walk a process
    // pool's task takes names it as the caller wrote it, and throws first (only on this path: a
    // thread's task is not walked before it is encoded).
    reduceTask(items, mode, first, false)
    throw error
  }
  return { id, job, index, fnId, bytes, shared: sharedWritten() !== before }
}

/** A task's items with their shared objects reduced, each named as the caller wrote it: args[i] of an apply, iterable[i] of a map's input. */
function reduceTask(items: unknown[], mode: TaskMode, first: number, portableOnly: boolean): { items: unknown[]; shared: boolean } {
  const r = mode !== MODE_APPLY
    ? reduceItems(items, 'iterable', first, portableOnly)
    : first < 0
      ? reduceItems(items[0] as unknown[], 'args', 0, portableOnly) // apply(fn, args)
      : reduceItems(items[0] as unknown[], 'iterable', first, portableOnly) // imap's one item
  return { items: mode === MODE_APPLY ? [r.items] : r.items, shared: r.shared }
}

/**
 * The first `count` chunks of `items`, `size` items each, as tasks of `job`. MODE_APPLY takes
 * chunks of one item, each run as fn(item) with its value as the result (imap's unchunked form).
 */
export function chunkTasks(job: Job, fnId: number, mode: TaskMode, items: unknown[], size: number, count: number): Task[] {
  const tasks: Task[] = []
  for (let c = 0; c < count; c++) {
    tasks.push(mode === MODE_APPLY ? makeTask(job, c, fnId, MODE_APPLY, [[items[c]]], c) : makeTask(job, c, fnId, mode, items.slice(c * size, (c + 1) * size), c * size))
  }
  return tasks
}

/** Python's rule: ceil(n / (4 × workers)). */
export function defaultChunksize(n: number, workers: number): number {
  const [q, r] = [Math.floor(n / (workers * 4)), n % (workers * 4)]
  return r ? q + 1 : q
}

export function checkChunksize(chunksize: unknown): number | undefined {
  if (chunksize === undefined || chunksize === null) return undefined
  if (typeof chunksize !== 'number' || !Number.isInteger(chunksize)) throw new TypeError(`chunksize must be an integer, not ${String(chunksize)}`)
  if (chunksize < 1) throw new ValueError(`Chunksize must be 1+, not ${chunksize}`)
  return chunksize
}

const STOP_MESSAGE = encodeCopy([OP_STOP] satisfies StopMessage)

/** The task queue, the workers it feeds, and the pump; the pool's results wait through it. */
export class Dispatcher implements ResultHost, Waiter {
  readonly events: Int32Array
  readonly i32: Int32Array
  waitIndex = EV
  waitValue = 0
  waitCapMs?: number
  state: PoolState = RUN
  readonly slots: WorkerSlots
  /** Tasks waiting for a worker, oldest first (requeued ones go to the front). */
  private queue: Task[] = []
  private queueHead = 0
  /** Tasks submitted and not yet answered or withdrawn. */
  outstanding = 0
  private pumping = false
  private callbacks: (() => void)[] = []
  private handlerRunning = false
  private pumpScheduled = false
  /** An idle pool's watch of EV is pending (watchIdle). */
  private watching = false
  /** Exponential average of one task's run time in µs, as the workers measure it. */
  private taskMicros = -1
  private depth = FIRST_DEPTH
  /** Tasks a worker runs before it retires (maxtasksperchild), 0 for no limit. */
  private readonly maxtasks: number
  /** Workers in a row whose initializer threw (a delivered result resets it). */
  private initFailures = 0
  /** Workers in a row that could not be started at all (no fd left, say: see reap); a delivered result resets it. */
  private startFailures = 0
  /** Until when a pool that still has workers waits before it tries to start the missing ones again. */
  private retryAt = 0
  /** Set once INIT_TRIES initializers failed in a row: every task fails with it from then on. */
  broken: Error | undefined
  readonly portable: boolean
  /** The claim word of the pool's first task (first-offer.ts): its id while offered, -n once worker n claimed it. */
  private readonly claim = new Int32Array(new SharedArrayBuffer(4))
  /** The first task while it is offered and not claimed (it is in no queue meanwhile). */
  private offered: Task | undefined
  /** Until the first dispatch: then the first task is offered to the threads made ahead, if it may be. */
  private mayOffer = true

  /** `fnRefs[fnId]` is sent to a worker before its first task that calls function fnId. */
  constructor(settings: WorkerSettings, readonly processes: number, private readonly fnRefs: readonly FunctionRef[]) {
    this.events = this.i32 = new Int32Array(settings.events)
    this.slots = new WorkerSlots(settings)
    this.maxtasks = settings.maxtasks
    this.portable = settings.startMethod === 'spawn'
  }

  submit(tasks: Task[]): void {
    for (const t of tasks) this.queue.push(t)
    this.outstanding += tasks.length
    if (this.broken) this.failQueued(this.broken)
    this.schedule()
  }

  /** A coro_ waiter relies on the handler loop: make sure it runs. */
  keepPumping(): void {
    if (!this.handlerRunning && this.outstanding > 0) this.schedule()
  }

  /** Runs the pump soon, and keeps a handler loop running while work is outstanding. */
  schedule(): void {
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
        else this.watchIdle()
      })
    })
  }

  /**
   * While no work is outstanding, a worker that ends (killed, out of memory) is still replaced at
   * once, as Python's pool thread does, and `pids` says so: EV, which the supervisor bumps when a
   * worker ends, is watched. A pending Atomics.waitAsync keeps no process alive.
   */
  watchIdle(): void {
    if (this.watching || this.handlerRunning || this.state !== RUN) return
    this.watching = true
    const r = Atomics.waitAsync(this.events, EV, Atomics.load(this.events, EV))
    const woken = (): void => {
      this.watching = false
      if (this.handlerRunning || this.state !== RUN) return
      this.pump()
      this.watchIdle()
    }
    if (r.async) void r.value.then(woken)
    else queueMicrotask(woken)
  }

  private handlerAttempt(): undefined | Pending {
    const seq = Atomics.load(this.events, EV)
    this.pump()
    if (this.outstanding === 0 || this.state === TERMINATE) return undefined
    return this.sleep(this, seq)
  }

  /**
   * Parks `w` on EV (read as `seq` before the pump ran), after raising WAITING and looking for
   * results once more (see WAITING). The sleep is short while a message is half in a pipe (the
   * worker frees room silently).
   */
  sleep(w: Waiter, seq: number): Pending {
    Atomics.store(this.events, WAITING, 1)
    if (this.slots.list.some((s) => s.conn.rx!.readable())) Atomics.add(this.events, EV, 1) // sleep returns at once
    return park(w, this.events, EV, seq, this.sleepCap())
  }

  /**
   * The longest sleep of a waiter: short while a message is half in a pipe, either way (the
   * worker frees room, or writes the rest, silently but for its announcements).
   */
  sleepCap(): number {
    return this.slots.list.some((w) => w.sending || w.recv.phase === 1) ? 1 : Infinity
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
      if (this.offered) this.takeClaim()
      for (const w of this.slots.list) {
        w.checkEnded()
        this.drain(w)
      }
      this.reap()
      // No thread left that could claim the first task (they all ended): it goes by the usual road.
      if (this.offered && !this.slots.list.some((w) => w.offers && !w.stopped)) this.takeOfferBack()
      this.dispatch()
    } finally {
      this.pumping = false
    }
    if (this.callbacks.length) this.runCallbacks()
  }

  runCallbacks(): void {
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
    // An ended worker may have left its initializer's error without having a task; one that broke
    // the protocol is being killed, and nothing more it sent is believed.
    if ((w.pending === 0 && !w.stopped) || w.broken) return
    // The answer to the first task, if this worker ran it before its library loaded, comes first.
    if (w.offers) {
      const answer = receiveMessageOnPort(w.offers)
      if (answer && !this.result(w, answer.message)) return
    }
    for (;;) {
      let msg: unknown
      try {
        msg = w.conn.recvAttempt(w.recv)
      } catch {
        return // the worker's end is gone; reap() handles what it left
      }
      if (msg === PENDING || !this.result(w, msg)) return
    }
  }

  /** Handles one message of worker `w`; false once it broke the protocol (nothing more it sent is read). */
  private result(w: WorkerSlot, msg: unknown): boolean {
    if (!isResult(msg)) {
      this.breakWorker(w, 'it sent something that is not a result')
      return false
    }
    const [id, ok, value, micros] = msg
    if (id === INIT_FAILED) {
      // [0, true, ...]: a process's initializer ran (a thread says so in its READY word).
      if (ok) w.up = true
      else w.initError = initializerError(rebuildError(value as ErrorRecord, `the initializer in pool worker ${w.where()}`), w)
      return true
    }
    // Results come in task order: any other id is not one of ours (a task that wrote into its
    // worker's own pipe, say).
    const task = w.inflight[w.inflightHead]
    if (!task || task.id !== id) {
      this.breakWorker(w, `it answered task ${id} where task ${task?.id ?? '(none)'} was next`)
      return false
    }
    w.shift()
    // Its first answer is in: no other comes by the offers port.
    w.closeOffers()
    this.initFailures = 0
    this.startFailures = 0
    this.taskMicros = this.taskMicros < 0 ? micros : this.taskMicros * 0.875 + micros * 0.125
    this.answer(task, ok, ok ? value : rebuildError(value as ErrorRecord, `pool worker ${w.where()}`))
    return true
  }

  /**
   * Offers the first task to the threads made ahead while they boot (first-offer.ts), when no
   * worker is up yet and the task may go so: its function rebuilt without the library's compiler
   * helpers, its arguments carried alike by the port, none of them shared objects.
   */
  private offerFirst(): void {
    this.mayOffer = false
    const targets = this.slots.list.filter((w) => w.offers && !w.checkEnded())
    const task = this.queue[this.queueHead]
    const fn = this.fnRefs[task.fnId]
    const offerable = targets.length > 0 && !task.shared && task.bytes.length <= OFFER_MAX_BYTES && !('source' in fn && MAY_CALL_HELPER.test(fn.source))
    // Decoded here as the worker would, so that the port carries what the usual road would have.
    const message = offerable ? (decode(task.bytes) as TaskMessage) : undefined
    if (!message || !crossesAlike(message[4])) {
      for (const w of this.slots.list) w.closeOffers()
      return
    }
    const [, id, , mode, items] = message
    this.queueHead++
    this.offered = task
    Atomics.store(this.claim, 0, id)
    for (const w of targets) {
      const offer: FirstOffer = { id, fnId: task.fnId, fn, mode, items, n: w.n, name: w.proc.name, identity: w.proc.identity, claim: this.claim.buffer as SharedArrayBuffer, events: this.events.buffer as SharedArrayBuffer, words: w.words.buffer as SharedArrayBuffer, state: w.proc.i32.buffer as SharedArrayBuffer }
      w.offers!.postMessage(offer)
    }
  }

  /** The offered first task, once a thread claimed it, is one of that worker's tasks in flight. */
  private takeClaim(): void {
    const claim = Atomics.load(this.claim, 0)
    if (claim >= 0) return
    const task = this.offered!
    this.offered = undefined
    for (const w of this.slots.list) if (w.n !== -claim) w.closeOffers()
    const w = this.slots.list.find((s) => s.n === -claim)
    // A worker leaves the list only in a pump, after this has run: never so.
    if (!w) return this.answer(task, false, new WorkerLostError('the pool worker that took the first task is gone'))
    w.inflight.splice(w.inflightHead, 0, task)
    w.assigned++
    Atomics.add(w.words, SENT, 1)
  }

  /**
   * Takes the offered first task back, to the front of the queue, unless a thread claimed it
   * first: then it is that worker's (takeClaim). Returns it when taken back.
   */
  private takeOfferBack(): Task | undefined {
    const task = this.offered!
    if (Atomics.compareExchange(this.claim, 0, task.id, 0) !== task.id) {
      this.takeClaim()
      return undefined
    }
    this.offered = undefined
    for (const w of this.slots.list) w.closeOffers()
    if (this.queueHead > 0) this.queue[--this.queueHead] = task
    else this.queue.unshift(task)
    return task
  }

  /**
   * A worker that broke the pool's protocol is killed, as the relay kills a process that breaks
   * its framing: its task in flight fails with `why` (reap), and a new worker takes its place.
   */
  private breakWorker(w: WorkerSlot, why: string): void {
    w.broken = why
    if (!w.stopped) w.proc.kill()
  }

  private answer(task: Task, ok: boolean, value: unknown): void {
    this.left(task)
    const job = task.job
    if (job.cancelled) return // an aborted coro_ call: its late answers are dropped
    job.taskDone(task.index, ok, value)
  }

  /** Handles workers that ended: fails the task one was running, requeues the rest, replaces it. */
  private reap(): void {
    let initError: Error | undefined
    let startError: Error | undefined
    const ended = (w: WorkerSlot): void => {
      // Not started at all: the system refused this process a thread or a process (EMFILE, EAGAIN,
      // ENOMEM), a shortage of the moment, not the pool's code. The workers it has go on, and the
      // missing ones are tried again later (below), whenever fds are back.
      if (w.proc.pid === null && !w.initError && this.state !== TERMINATE) {
        startError = new ProcessError(`the pool worker ${w.where()} could not be started (exitcode ${w.proc.exitcode}): its error is printed above (EMFILE: this process has no file descriptor left for its ${w.proc.startMethod === 'spawn' ? 'pipes' : 'thread'}, for one); the pool tries again with its next task`)
        return
      }
      // A worker that ended before it was up failed as an initializer that throws does: a module
      // it loads first (a preload) fails to load, or its initializer ended it (process.exit, a
      // crash), and would in every replacement. A process killed from outside meanwhile (SIGKILL,
      // SIGTERM, SIGINT...) is only replaced: nothing of the pool's was to blame.
      if (!w.initError && !w.wasUp() && this.state !== TERMINATE && !w.killedFromOutside()) {
        w.initError = new ProcessError(w.proc.startMethod === 'spawn'
          ? `the pool worker ${w.where()} ended before it was ready (exitcode ${w.proc.exitcode}): ${this.slots.initializer ? 'its initializer ended it (process.exit, a crash), or ' : ''}a module it loads first failed to load${this.slots.initializer ? '' : ', or it crashed while it started'}; its error, if any, is printed above`
          : `the pool worker ${w.where()} ended before it was ready (exitcode ${w.proc.exitcode}): a module it loads first (preload) failed to load, or the thread could not start; its error is printed above`)
      }
      if (!w.initError) return
      this.initFailures++
      initError = w.initError
    }
    const requeue = this.slots.reap((w) => this.drain(w), (task, error) => this.answer(task, false, error), ended)
    if (requeue.length) {
      this.queue = [...requeue, ...this.queue.slice(this.queueHead)]
      this.queueHead = 0
    }
    if (this.state === TERMINATE) return
    if (initError && this.initFailures >= INIT_TRIES && !this.broken) this.giveUp(initError)
    if (this.broken) return
    if (startError) {
      this.startFailures++
      this.retryAt = performance.now() + Math.min(START_RETRY_MAX_MS, START_RETRY_MS * 2 ** (this.startFailures - 1))
      // No worker left to run them: the tasks fail rather than wait for fds that may never come
      // back. The pool is not broken: its next task tries again.
      if (this.slots.list.length === 0 && this.startFailures >= INIT_TRIES) this.failQueued(startError)
    }
    // Python keeps the pool populated while it runs, and while a closed pool still has work.
    if (this.state === RUN || this.outstanding > 0) this.refill()
  }

  /**
   * Starts the missing workers; after workers that could not be started, not before retryAt while
   * others run the work (a process without fds would fail each start at once, in a loop), nor
   * with no work at all: a task submitted then tries at once.
   */
  private refill(): void {
    if (this.slots.list.length >= this.processes) return
    if (this.startFailures > 0 && performance.now() < this.retryAt && (this.slots.list.length > 0 || this.outstanding === 0)) return
    this.slots.fill(this.processes)
  }

  /** Sends queued tasks to workers with room, the least loaded first. */
  private dispatch(): void {
    if (this.state === TERMINATE) return
    if (this.taskMicros >= 0) this.depth = Math.max(MIN_DEPTH, Math.min(MAX_DEPTH, Math.round(QUEUED_WORK_US / Math.max(this.taskMicros, 0.5))))
    const workers = this.slots.list
    for (const w of workers) {
      if (w.sending && !this.continueSend(w)) continue
    }
    // A worker is up by the usual road before any thread claimed the first task: it goes there.
    if (this.offered && workers.some((w) => w.ready())) this.takeOfferBack()
    if (this.mayOffer && this.queueHead < this.queue.length && !workers.some((w) => w.ready())) this.offerFirst()
    // A worker's fair share of the work not yet done (queued or in a worker), when that is less
    // than every worker's room: a worker still booting gets its share once it is up, rather than
    // find the first one up holding everything (long tasks would run one after another there).
    let inflight = 0
    for (const w of workers) inflight += w.pending
    const share = Math.ceil((this.queue.length - this.queueHead + inflight) / Math.max(1, workers.length))
    while (this.queueHead < this.queue.length) {
      let best: WorkerSlot | undefined
      for (const w of workers) {
        if (w.stopped || w.stopping || w.sending || !w.ready()) continue
        if (this.maxtasks && w.assigned >= this.maxtasks) continue
        // Refill only once half of the depth is done: batches stay large, wake-ups few.
        if (w.pending > this.depth >> 1 || w.pending >= share) continue
        if (!best || w.pending < best.pending) best = w
      }
      if (!best) break
      // Fill the chosen worker up to its depth (or its share) in one go: one wake-up for many tasks.
      let room = Math.min(this.depth, share) - best.pending
      if (this.maxtasks) room = Math.min(room, this.maxtasks - best.assigned)
      // One record carries the whole batch: one commit, one wake-up of the worker.
      const batch: Buffer[] = []
      const sharedIds: number[] = []
      let added = 0
      let bytes = 0
      while (room-- > 0 && this.queueHead < this.queue.length) {
        // A process's batch is one relayed record, which has a size limit: the tasks past it wait.
        if (this.portable && added > 0 && bytes + this.queue[this.queueHead].bytes.length > MAX_TASK_BYTES) break
        const task = this.queue[this.queueHead++]
        if (task.job.cancelled) {
          this.left(task)
          continue
        }
        if (!best.known.has(task.fnId)) {
          best.known.add(task.fnId)
          batch.push(encodeCopy([OP_DEFINE, task.fnId, this.fnRefs[task.fnId]] satisfies DefineMessage))
          sharedIds.push(0)
        }
        best.inflight.push(task)
        best.assigned++
        added++
        batch.push(task.bytes)
        bytes += task.bytes.length
        sharedIds.push(task.shared ? task.id : 0)
      }
      Atomics.add(best.words, SENT, added)
      Atomics.store(best.words, LOW_WATER, Math.max(1, this.depth >> 1))
      if (batch.length) this.sendBatch(best, batch, sharedIds)
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead)
      this.queueHead = 0
    }
    if (this.state === CLOSE && this.outstanding === 0) {
      for (const w of workers) {
        if (!w.stopping && !w.sending) {
          w.stopping = true
          this.sendBatch(w, [STOP_MESSAGE])
        }
      }
    }
  }

  /** Puts one record in the worker's pipe; one that does not fit now is finished by later pumps, before anything else goes to that worker. */
  private sendBatch(w: WorkerSlot, messages: Buffer[], sharedIds?: number[]): void {
    const st = new SendState(w.conn.tx!.i32, frameBatch(messages, sharedIds))
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

  /** The initializer failed INIT_TRIES times in a row: no more workers, and every task fails with its error. */
  private giveUp(error: Error): void {
    this.broken = error
    for (const w of this.slots.list) {
      if (!w.stopped) w.proc.terminate()
      for (const t of w.takeAll()) this.answer(t, false, error)
    }
    this.failQueued(error)
  }

  private failQueued(error: Error): void {
    const queued = this.queue.slice(this.queueHead)
    this.queue = []
    this.queueHead = 0
    for (const t of queued) this.answer(t, false, error)
  }

  /** A task leaves the pool (answered, lost, withdrawn): what was counted for it goes back (makeTask). */
  private left(task: Task): void {
    this.outstanding--
    releaseCounted(task.counted)
    task.counted = undefined
  }

  /** Takes back a cancelled job's queued tasks (its tasks already in workers are dropped on arrival). */
  withdraw(job: Job): void {
    if (this.offered?.job === job) this.takeOfferBack()
    const kept: Task[] = []
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const t = this.queue[i]
      if (t.job === job) this.left(t)
      else kept.push(t)
    }
    this.queue = kept
    this.queueHead = 0
  }

  /** Ends every worker now and fails every job with a task queued or in flight. */
  terminate(): void {
    if (this.state === TERMINATE) return
    // The first task, if still offered, is failed with the queued ones; claimed, with its worker's.
    if (this.offered) this.takeOfferBack()
    this.state = TERMINATE
    const workers = this.slots.list
    for (const w of workers) {
      if (!w.stopped) w.proc.terminate()
      // Nothing more is read: a writer waiting for room in the pipe (a process worker's relay) stops.
      w.conn.close()
      w.closeOffers()
    }
    // A process whose task handles SIGTERM would run on, and join() wait for it for ever: it is
    // killed KILL_GRACE_MS later, by whichever wait of this thread (or its event loop) is first.
    const processes = workers.filter((w) => w.proc.startMethod === 'spawn' && !w.stopped)
    if (processes.length) {
      dueAt(performance.now() + KILL_GRACE_MS, () => {
        for (const w of processes) if (!w.checkEnded()) w.proc.kill()
      })
    }
    const jobs = new Set<Job>()
    for (const t of [...this.queue.slice(this.queueHead), ...workers.flatMap((w) => w.takeAll())]) {
      jobs.add(t.job)
      releaseCounted(t.counted)
    }
    this.queue = []
    this.queueHead = 0
    this.outstanding = 0
    for (const job of jobs) if (!job.cancelled) job.terminated()
    this.runCallbacks()
  }
}

/** Whether `m` has a result's shape ([id, ok, value, micros], an error record when not ok): what a worker of ours sends. */
/** What an initializer threw, as the pool's error: a falsy value (throw null) would read as none, so it is named instead. */
function initializerError(thrown: unknown, w: WorkerSlot): Error {
  if (thrown) return thrown as Error
  return new ProcessError(`the initializer in pool worker ${w.where()} threw ${typeof thrown === 'string' ? JSON.stringify(thrown) : String(thrown)}`)
}

function isResult(m: unknown): m is ResultMessage {
  if (!Array.isArray(m) || m.length !== 4 || !Number.isSafeInteger(m[0]) || m[0] < 0 || typeof m[1] !== 'boolean' || typeof m[3] !== 'number') return false
  const record = m[2] as ErrorRecord | null
  return m[1] || (typeof record === 'object' && record !== null && typeof record.isError === 'boolean' && typeof record.name === 'string' && typeof record.message === 'string')
}
