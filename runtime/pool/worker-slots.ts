// A pool's workers: each one's process, pipe, words and tasks in flight, and the set of them —
// started, and, when one ends, its tasks sorted out and its place freed for a replacement.
// A worker that ends mid-task fails exactly the task in its CURRENT word; the tasks sent after it go back.

import { ProcessCore, type AheadThread } from '../process/process.js'
import { CUT, STATE, STOPPED } from '../process/supervisor-protocol.js'
import { BROKE_FRAMING, STOPPED_READING } from '../ipc/stream-relay.js'
import { ConnectionCore, SendState } from '../ipc/connection.js'
import { GetState } from '../ipc/ring.js'
import { WorkerLostError } from '../core/errors.js'
import { CURRENT, LOW_WATER, POOL_PROCESS_WORKER_TARGET, POOL_WORKER_TARGET, READY, WORKER_WORDS, type ProcessWorkerArgs, type WorkerArgs } from './pool-protocol.js'
import type { Task } from './results.js'
import type { MessagePort, ResourceLimits } from 'node:worker_threads'
import { constants } from 'node:os'

/** The signals a process gets from its own fault (a native crash, an abort), by number. */
const OWN_FAULT_SIGNALS = new Set((['SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGSYS'] as const).map((s) => constants.signals[s]))

/** Pipe ring size per direction and worker. */
const PIPE_CAPACITY = 128 * 1024
/** Tasks sent ahead to a new worker before any task time is measured. */
export const FIRST_DEPTH = 16

/** What every worker of a pool starts with; each slot adds its own pipe and words. */
export type WorkerSettings = Omit<WorkerArgs, 'rx' | 'tx' | 'words'> & {
  resourceLimits: ResourceLimits | undefined
  preload: (string | URL)[] | undefined
  /** 'spawn': workers are processes, their pipes relayed by the supervisor (pool-process-loop.ts). */
  startMethod: 'thread' | 'spawn'
}

export class WorkerSlot {
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
  /** The initializer's error, when the worker ended because it threw. */
  initError: Error | undefined
  /** A process's initializer ran: its message [INIT_FAILED, true] came (a thread's READY word says it). */
  up = false
  /** Why the pool killed it: it broke the pool's protocol (dispatch.ts breakWorker). */
  broken: string | undefined

  /**
   * The port a thread made ahead was given for its pool's first task (first-offer.ts): the offer
   * goes out on it, and the answer comes back on it; closed once not needed.
   */
  offers: MessagePort | undefined

  constructor(settings: WorkerSettings, readonly n: number, ahead?: AheadThread) {
    const [mine, theirs] = ConnectionCore.pipe(true, PIPE_CAPACITY)
    this.conn = mine
    this.recv = mine.recvBegin()
    this.words[LOW_WATER] = FIRST_DEPTH >> 1
    const { resourceLimits, preload, startMethod, ...shared } = settings
    const ends = { rx: theirs.rx!.i32.buffer as SharedArrayBuffer, tx: theirs.tx!.i32.buffer as SharedArrayBuffer }
    const common = { name: `PoolWorker-${n}`, daemon: true, resourceLimits, preload, exitNotify: settings.events }
    if (startMethod === 'spawn') {
      // A process shares no memory with us: the supervisor relays its pipe to `theirs`, and the
      // relay holds that end from now on.
      const stamp = (Math.random() * 0x100000000) >>> 0
      const args: ProcessWorkerArgs = { initializer: shared.initializer, initargs: shared.initargs, maxtasks: shared.maxtasks, stamp }
      this.proc = new ProcessCore({
        ...common,
        target: POOL_PROCESS_WORKER_TARGET,
        args: [args],
        startMethod: 'spawn',
        relay: { ...ends, notify: settings.events, stamp },
        // It loads the library's classes when a task holds proxies (pool-process-loop.ts rebuilt()).
        lazyRegistry: true,
      })
    } else {
      const args: WorkerArgs = { ...ends, words: this.words.buffer as SharedArrayBuffer, ...shared }
      this.proc = new ProcessCore({
        ...common,
        target: POOL_WORKER_TARGET,
        args: [args],
        lazyRegistry: true,
        // The first pool of a thread need not wait for its supervisor to boot (process.ts).
        direct: true,
        ahead: ahead?.worker,
      })
      this.offers = ahead?.offers
    }
    this.proc.start()
  }

  /** Closes the offers port: the first task is answered, or went elsewhere, or this worker ended. */
  closeOffers(): void {
    this.offers?.close()
    this.offers = undefined
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

  /** Up and past its initializer (a process shares no words: its tasks wait in its pipe meanwhile). */
  ready(): boolean {
    return this.proc.startMethod === 'spawn' || Atomics.load(this.words, READY) === 1
  }

  /** Whether it got past its initializer: a thread's READY word, a process's message saying so (`up`). */
  wasUp(): boolean {
    return this.proc.startMethod === 'spawn' ? this.up : Atomics.load(this.words, READY) === 1
  }

  /**
   * A process that a signal of the kind others send ended (SIGKILL, SIGTERM, SIGINT, SIGHUP...),
   * not its own fault: a native crash or an abort (out of memory under --max-old-space-size) ends
   * it with one of OWN_FAULT_SIGNALS. (SIGINT and SIGHUP were taken for its initializer's doing:
   * a few sent to a pool's starting workers, by a script or a supervisor, broke the pool for good.)
   * So did a thread whose process supervisor failed to start (EMFILE) and took it along.
   */
  killedFromOutside(): boolean {
    if (this.proc.lostWithSupervisor) return true
    const code = this.proc.exitcode
    return this.proc.startMethod === 'spawn' && code !== null && code < 0 && !OWN_FAULT_SIGNALS.has(-code)
  }

  /** Notes whether the supervisor marked the worker's process stopped; true once it has. */
  checkEnded(): boolean {
    if (Atomics.load(this.proc.i32, STATE) === STOPPED) this.stopped = true
    return this.stopped
  }

  /** The worker as error messages name it: `PoolWorker-2 (thread 7)`, `PoolWorker-2 (pid 4242)`. */
  where(): string {
    return `${this.proc.name} (${this.proc.startMethod === 'spawn' ? 'pid' : 'thread'} ${this.proc.pid})`
  }

  /**
   * The id of the task the worker was running when it ended: its CURRENT word, or for a process
   * (which shares no words) the oldest task it had not answered, the one it ran or was about to.
   */
  current(): number {
    // One whose initializer threw ran none: its tasks all go back.
    if (this.proc.startMethod === 'spawn') return this.initError || !this.up ? 0 : (this.inflight[this.inflightHead]?.id ?? 0)
    return Atomics.load(this.words, CURRENT)
  }

  /** The error of the task the worker was running when it ended. */
  lostError(): WorkerLostError {
    const code = this.proc.exitcode
    const cut = Atomics.load(this.proc.i32, CUT)
    const how =
      this.broken ? `the pool killed it: ${this.broken}` :
      cut === BROKE_FRAMING ? 'killed: it wrote into its results socket something that is not a result, bytes of its own code perhaps' :
      cut === STOPPED_READING ? 'killed: it stopped reading its tasks (its code closed their socket, perhaps)' :
      this.proc.lostWithSupervisor ? 'its process supervisor failed (its error is printed above: EMFILE, for one), and ended it' :
      code === 1 ? 'it crashed or ran out of memory (exitcode 1)' :
      code === 13 ? 'the task awaited a promise that could never settle: nothing was left to keep the worker alive (exitcode 13)' :
      code === -9 ? 'it was killed (SIGKILL; the system kills a process that runs out of memory so)' :
      code === -6 || code === 134 ? 'it aborted (SIGABRT: a native crash, or out of memory under --max-old-space-size)' :
      code === -11 || code === 139 ? 'it crashed (SIGSEGV: a native addon or a bug)' :
      code !== null && code < 0 ? `signal ${-code}` :
      `exitcode ${code}`
    // A process shares no word that says which task runs: the task is the oldest it had not
    // answered, which it ran or, if it was killed from outside between two tasks, was about to.
    const when = this.proc.startMethod === 'spawn' ? 'while running this task, or just before it' : 'while running this task'
    return new WorkerLostError(`the pool worker ${this.where()} ended ${when} (${how}); the task was not retried, and the pool goes on with a new worker`)
  }
}

/** The workers of one pool, in the order they started. */
export class WorkerSlots {
  readonly list: WorkerSlot[] = []
  private started = 0

  constructor(private readonly settings: WorkerSettings) {}

  /** Whether the workers run an initializer before their first task. */
  get initializer(): boolean {
    return this.settings.initializer !== null
  }

  /** Starts workers until there are `n`, on the threads made `ahead` first (process.ts threadsAhead). */
  fill(n: number, ahead: AheadThread[] = []): void {
    while (this.list.length < n) this.list.push(new WorkerSlot(this.settings, ++this.started, ahead.shift()))
  }

  /**
   * Takes out the workers that ended, once `drain` took what each wrote before it ended. The task
   * one was running goes to `lost`; the tasks sent after it are returned, to go out again first.
   */
  reap(drain: (w: WorkerSlot) => void, lost: (task: Task, error: WorkerLostError) => void, ended: (w: WorkerSlot) => void): Task[] {
    let requeue: Task[] = []
    for (let i = 0; i < this.list.length; i++) {
      const w = this.list[i]
      if (!w.stopped) continue
      drain(w)
      w.closeOffers()
      ended(w)
      const current = w.current()
      const rest: Task[] = []
      for (const t of w.takeAll()) {
        if (t.id === current) lost(t, w.lostError())
        else rest.push(t)
      }
      // A later worker's tasks go before an earlier one's, as each worker's were put at the front.
      if (rest.length) requeue = [...rest, ...requeue]
      this.list.splice(i--, 1)
    }
    return requeue
  }
}
