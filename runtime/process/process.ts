// AioProcess on the 'thread' start method: the target runs in a worker thread. Its state is a
// buffer of words (STATE, EXITCODE, PID, and LOAD and OWN_CODE for a direct one), laid out in
// supervisor-protocol.ts.
//
// Workers are created by a supervisor thread, not by the caller: a worker's 'exit' event is
// delivered on the thread that created it, and a caller parked in a blocking join() runs no
// event loop. The supervisor turns every end — return, throw, process.exit, terminate(),
// kill(), out-of-memory under resourceLimits — into a store to STATE and an Atomics.notify.
//
// Except for the first pool of a thread: its workers would wait for the supervisor's boot, then
// boot themselves (two thread start-ups in a row, ~25 ms each here). So a process started with
// `direct` while this thread has no supervisor is created here, and the supervisor, started
// SUPERVISOR_DELAY_MS after the first of them has loaded (at once when this thread is about to
// block, or one ends or is killed), watches it: it holds the worker's feeder port, whose 'close'
// says the worker ended, however it ended. The exit code comes from the worker's own 'exit'
// handler (OWN_CODE); a terminate() while it still loads is left to the worker itself (LOAD), as
// the supervisor defers it (supervisor-thread.ts), and after LOAD_GRACE_MS done by this thread
// (wait.ts dueAt, which its blocking waits run too). The worker prints its own uncaught error.

import type { RelayEnds } from '../ipc/stream-relay.js'
import { MessageChannel, Worker, type MessagePort, type ResourceLimits } from 'node:worker_threads'
import { livenessTable } from '../core/liveness.js'
import { ownSupervisorGone, provideSupervisor, upstreamPort } from '../ipc/feeder-client.js'
import { park, type Pending, type Waiter, beforeNextBlock, blockOn, coroBlockOn, dueAt } from '../core/wait.js'
import { ProcessError, ValueError, outOfFds } from '../core/errors.js'
import { classModuleList, portableModuleList, reduceTree } from '../core/transfer.js'
import { reduceFor, type KeyServer } from '../core/destination.js'
import { threadBroker } from '../core/thread-broker.js'
import { releaseClientKey } from '../ipc/gone.js'
import { newClientKey } from '../core/client-key.js'
import { currentProcess, nextChildIdentity } from '../core/current.js'
import { checkFunction } from '../core/args.js'
import { functionSource } from '../core/function-source.js'
import { isAbsolute } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createWorker, threadFdsFree } from '../core/exec-argv.js'
import { libraryFile } from '../core/library-file.js'
import { JOIN_CHILDREN, atProcessEnd } from '../core/process-end.js'
import { BOOTED, EXITCODE, INITIAL, KILL_PENDING, LOAD, LOAD_GRACE_MS, LOADED, LOADED_WORD, LOADING, markNeverStarted, markStopped, markWatchedStopped, noPidUnlessLoaded, OWN_CODE, PID, printProcessError, PROCESS_WORDS, STARTED, STATE, STOPPED, unknownMessage, UNSET, type FromSupervisor, type ProcessData, type SupervisorData, type ToSupervisor, type WatchMessage, type AheadData } from './supervisor-protocol.js'

export type { ProcessData } from './supervisor-protocol.js'

const SIGKILL = 9
const SIGTERM = 15

/** A process target: a self-contained function (shipped as source) or a module export. */
export type Target<A extends unknown[] = any[]> = ((...args: A) => unknown) | { module: string | URL; name?: string }

/**
 * `A`: the target's parameters, inferred from an inline target; `args` is checked against them
 * (NoInfer: the args do not widen what the target takes). A `{ module, name }` target is unchecked.
 */
export interface ProcessOptions<A extends unknown[] = any[]> {
  target?: Target<A>
  args?: NoInfer<A>
  name?: string
  daemon?: boolean
  /** Node's worker resource limits (e.g. maxOldGenerationSizeMb); exceeding them ends the process with exitcode 1. */
  resourceLimits?: ResourceLimits
  /**
   * 'thread' (default): a worker thread over shared memory. 'spawn': a new Node process; its
   * shared objects must be proxies (from getContext('spawn') or an AioManager).
   */
  startMethod?: 'thread' | 'spawn'
  /**
   * Modules the process imports before its target, in order (a URL, an absolute path or a package
   * specifier); one that exports `register()` has it called. Loader hooks of `node --import tsx`
   * do not reach worker threads on Node 20: `preload: ['tsx/esm/api']` registers tsx in the
   * process itself, so a `{ module: 'tasks.ts' }` target loads.
   */
  preload?: (string | URL)[]
  /** @internal Word 0 of this buffer is incremented and notified when the process ends. */
  exitNotify?: SharedArrayBuffer
  /** @internal The target loads the library's classes itself when it needs them (a pool worker). */
  lazyRegistry?: boolean
  /**
   * @internal A spawned process that loads every class module, not only their portable parts
   * (transfer.ts portableModuleList): a manager server, which hosts the classes.
   */
  allClasses?: boolean
  /** @internal A spawned process's DATA_IN_FD and DATA_OUT_FD are relayed to this shared-memory pipe end (a spawn pool worker). */
  relay?: RelayEnds
  /** @internal See ProcessData.untrackedFds. */
  untrackedFds?: boolean
  /** @internal A daemon thread this thread may create itself while it has no supervisor (a pool worker; see above). */
  direct?: boolean
  /** @internal A thread made ahead of this process's data (threadsAhead), for a direct start. */
  ahead?: Worker
}

// ---------------------------------------------------------------------------------------------
// The supervisor: one per thread that starts processes, ref'd while a non-daemon child runs.

let supervisor: Worker | undefined
let nextId = 1
const live = new Map<number, ProcessCore>()
/**
 * How long after the first direct worker has loaded its supervisor starts. Until then a feeder
 * request of the workers (a put into a full queue) waits for it. The tests set it longer to start
 * a supervisor when they choose (AIOPROCESSING_TEST_SUPERVISOR_DELAY_MS).
 */
const SUPERVISOR_DELAY_MS = Number(process.env.AIOPROCESSING_TEST_SUPERVISOR_DELAY_MS) || 50
/** Word 0 of the supervisor's SupervisorData.up, and when it was made. */
let supervisorUp: Int32Array | undefined
let supervisorMadeAt = 0
/**
 * A supervisor that has not run its first statement this long after it was made could not start
 * (no fd for its thread: EMFILE). Its failure reaches only this thread's event loop, which a
 * blocking wait for what it would do (a pid) must not hold for long.
 */
const SUPERVISOR_SILENT_MS = 2_000
/** A supervisor that has not run its first statement this long after it was made is given up (supervisorWorker). */
const SUPERVISOR_DEAD_MS = 10_000
/** How often a thread, blocked or not, looks at a supervisor's word until it is up (supervisorWorker). */
const SUPERVISOR_CHECK_MS = 250

function supervisorSilent(): boolean {
  if (supervisorUp === undefined) return false
  const up = Atomics.load(supervisorUp, 0)
  return up === -1 || (up === 0 && performance.now() - supervisorMadeAt > SUPERVISOR_SILENT_MS)
}

/** Direct workers' watch requests, until the supervisor exists. */
const unwatched: WatchMessage[] = []
const bootstrapUrl = new URL('./bootstrap.js', import.meta.url)

export function supervisorWorker(): Worker {
  if (!supervisor) {
    const upstream = upstreamPort()
    const up = new SharedArrayBuffer(4)
    const workerData: SupervisorData = { liveness: livenessTable(), upstream, classModules: classModuleList(), portableModules: portableModuleList(), up }
    const transferList = upstream ? [upstream] : []
    // Untracked: Node's fd tracking is inherited (a worker tracks when any thread above it does),
    // so a tracking supervisor would make the manager server it starts track its fast lanes'
    // FIFOs too (ProcessData.untrackedFds). It opens no fds of its own; the process threads it
    // starts still track theirs (trackUnmanagedFds: true there).
    const main = libraryFile(new URL('./supervisor-start.js', import.meta.url), 'start a process')
    try {
      supervisor = createWorker((execArgv) => new Worker(main, { workerData, transferList, execArgv, trackUnmanagedFds: false }))
    } catch (error) {
      upstream?.close()
      throw outOfFds(error, 'the process supervisor thread cannot start')
    }
    supervisorUp = new Int32Array(up)
    supervisorMadeAt = performance.now()
    supervisor.on('message', (m: FromSupervisor) => {
      switch (m.op) {
        case 'exited':
          live.delete(m.id)
          refSupervisor()
          return
        default:
          // `as never`: TypeScript narrows a union to never, not a lone message type.
          unknownMessage('from the process supervisor', m as never)
      }
    })
    supervisor.on('error', (e) => {
      process.stderr.write(`aioprocessing: the process supervisor failed: ${e.stack ?? e}\n`)
    })
    // Its processes went with it (a thread's workers end with it): each ends with exitcode 1, so
    // that a join() returns instead of waiting for ever; the next start() makes a new supervisor.
    const sup = supervisor
    const lost = (): void => {
      if (supervisor !== sup) return
      supervisor = undefined
      supervisorUp = undefined
      ownSupervisorGone()
      for (const p of live.values()) p.supervisorLost()
      live.clear()
    }
    sup.on('exit', lost)
    // One that failed in its start-up (another thread took the fds it was counted) says so in its
    // 'exit', to this thread's event loop alone: a blocked thread learns it here (wait.ts dueAt),
    // from its word: 1 once its first statement ran, 2 once its code loaded, -1 when that failed;
    // still 0 when its first statement never ran (a supervisor runs it ~25 ms after it was made
    // here; one this slow is ended).
    const upWord = supervisorUp
    const check = (): void => {
      if (supervisor !== sup) return
      const up = Atomics.load(upWord, 0)
      if (up === 2) return // its code loaded
      if (up === 1 || performance.now() - supervisorMadeAt < SUPERVISOR_DEAD_MS) return dueAt(performance.now() + SUPERVISOR_CHECK_MS, check)
      process.stderr.write(`aioprocessing: the process supervisor ${up === 0 ? `did not start in ${SUPERVISOR_DEAD_MS / 1000} s` : 'could not load its code'} (no fds for its thread, for one): it is ended, with the processes it watched\n`)
      void sup.terminate()
      lost()
    }
    dueAt(supervisorMadeAt + SUPERVISOR_CHECK_MS, check)
    supervisor.unref()
    for (const m of unwatched.splice(0)) handOver(supervisor, m)
  }
  return supervisor
}

/**
 * The supervisor, started if need be, or undefined while there are no fds for its thread (an
 * OSError of supervisorWorker): for those who only want the direct workers watched, which the
 * next call tries again (an event handler, a getter, a blocking wait must not throw for it).
 */
function trySupervisor(): Worker | undefined {
  try {
    return supervisorWorker()
  } catch {
    return undefined
  }
}

/** How often this thread, blocked or not, looks after direct workers that no supervisor could watch. */
const UNWATCHED_POLL_MS = 50
/**
 * A direct worker whose first module has not run this long after it was made failed in its
 * start-up (another thread took the fds it was counted: exec-argv.ts), as far as a blocked owner
 * can tell: its 'error' event says so only to the event loop that is blocked, and a supervisor
 * watching it hears of its end only once that loop has let it go. A thread runs its first module
 * ~30 ms after it was made here, before anything of the user's loads; one this slow is ended.
 */
const NEVER_BOOTED_MS = 5_000
let pollDue = false

/**
 * While no supervisor can start (no fds for its thread), this thread does its part for the direct
 * workers, whether it is in its event loop or blocked (wait.ts dueAt): it tries the supervisor
 * again, and marks the end of a worker that set its own exit code (it ran its exit handlers) or
 * was killed, which would otherwise reach only this thread's event loop ('exit', endedUnwatched).
 * A worker that could not load its first module sets nothing: only its 'exit' event tells.
 */
function pollUnwatched(): void {
  if (pollDue || unwatched.length === 0) return
  pollDue = true
  dueAt(performance.now() + UNWATCHED_POLL_MS, () => {
    pollDue = false
    if (supervisor !== undefined || trySupervisor() !== undefined) return // it has them now
    for (const m of [...unwatched]) if (Atomics.load(new Int32Array(m.sab), OWN_CODE) !== UNSET) endedUnwatched(m.id)
    pollUnwatched()
  })
}

/**
 * A direct worker ended while no supervisor could start, which alone marks a worker's end: this
 * thread marks it instead, as handOver does for one that ended before the supervisor had it.
 */
function endedUnwatched(id: number): void {
  const i = unwatched.findIndex((m) => m.id === id)
  if (i < 0) return
  const [m] = unwatched.splice(i, 1)
  m.port.close()
  markWatchedStopped(m, livenessTable())
  live.delete(id)
}

function watch(m: WatchMessage): void {
  if (supervisor) return handOver(supervisor, m)
  if (unwatched.push(m) === 1) beforeNextBlock(() => void (trySupervisor() ?? pollUnwatched()))
}

/** workerData of a thread made ahead of its process: its ProcessData comes in its first message (bootstrap.ts). */
export const AHEAD: AheadData = { ahead: true }

/** A thread made ahead of its process (threadsAhead), and the port its pool offers it a first task on. */
export interface AheadThread {
  worker: Worker
  offers?: MessagePort
}

/**
 * Threads for a thread's first pool, made before anything else of it (see PoolCore): a first
 * thread boots for ~25 ms, and the ~2 ms that its process's data and the pool's pipes take to
 * make (the first calls of that code compile it) need not come first. Each waits for its data in
 * a message (ProcessOptions.ahead). None while this thread has a supervisor, which starts the
 * workers, and fewer than `n` when the system refuses one (the pool starts the rest as usual).
 * With `first` (a pool's first module, pool/first-task.ts, and the module it imports boot() from),
 * each runs that first, with a port on which its pool may offer it its first task (pool/first-offer.ts).
 */
export function threadsAhead(n: number, resourceLimits: ResourceLimits | undefined, first?: { module: URL; boot: string }): AheadThread[] {
  // A daemon's start() refuses children (Python's rule): no thread for them.
  if (supervisor !== undefined || currentProcess().daemon) return []
  const made: AheadThread[] = []
  const drop = (): void => {
    for (const a of made.splice(0)) {
      void a.worker.terminate()
      a.offers?.close()
    }
  }
  const make = (countFds: boolean): void => {
    const channel = first ? new MessageChannel() : undefined
    try {
      const worker = createWorker((execArgv) => channel
        ? new Worker(first!.module, { workerData: { ...AHEAD, offers: channel.port2, boot: first!.boot } satisfies AheadData, transferList: [channel.port2], resourceLimits, execArgv })
        : new Worker(bootstrapUrl, { workerData: AHEAD, resourceLimits, execArgv }), countFds)
      // Its process listens from start() on: until then, an error (EMFILE) must not throw here.
      worker.on('error', () => undefined)
      made.push({ worker, offers: channel?.port1 })
    } catch (error) {
      channel?.port1.close()
      throw error
    }
  }
  try {
    // The first thread is made before the fds are counted, the others after: the pool's first
    // result waits for the first thread's boot, which the first count (~0.5 ms: it reads
    // /proc/self/limits and the fd folder for the first time) held back. Short of fds, that thread
    // goes too: it may not start, and its failure would reach only this thread's event loop. The
    // pool then starts its workers as usual, and they fail with the count's error. (Node may keep
    // an fd of a thread that failed to start: once, for a thread's first pool.)
    make(false)
    try {
      threadFdsFree()
    } catch {
      drop()
      return []
    }
    while (made.length < n) make(true)
  } catch {
    // No thread to be had now: the rest start when their processes do.
  }
  // The supervisor comes later, from the same folder: an app that bundled the library learns now,
  // after the threads, which the check does not hold back.
  try {
    libraryFile(new URL('./supervisor-start.js', import.meta.url), 'start a process')
  } catch (error) {
    drop()
    throw error
  }
  return made
}

/** Hands a direct worker's port to the supervisor; a worker that ended meanwhile (its port closed) is marked stopped here. */
function handOver(sup: Worker, m: WatchMessage): void {
  try {
    sup.postMessage(m, [m.port])
  } catch {
    markWatchedStopped(m, livenessTable())
    live.delete(m.id)
  }
}

provideSupervisor(supervisorWorker)

/** Non-daemon children keep this thread alive, as Python joins them at exit; daemon ones do not. */
function refSupervisor(): void {
  for (const p of live.values()) {
    if (!p.daemon) {
      supervisor!.ref()
      return
    }
  }
  supervisor!.unref()
}

/**
 * At the end of its process, this thread waits for its non-daemon children, as a Python process
 * does at exit (its daemonic children are terminated, as they are here when the thread ends).
 */
atProcessEnd(JOIN_CHILDREN, async () => {
  for (const p of [...live.values()]) {
    if (!p.daemon) await coroBlockOn(p, () => p.joinAttempt(), Infinity, () => undefined, undefined)
  }
})

/** How a target travels; `preload`, the modules its thread runs first (which may define globals). */
export function targetOf(target: Target, what = 'target', preload?: readonly unknown[]): ProcessData['target'] {
  if (typeof target === 'function') {
    return { source: functionSource(what, target, { preloaded: (preload?.length ?? 0) > 0 }) }
  }
  if (target && typeof target === 'object' && (typeof target.module === 'string' || target.module instanceof URL)) {
    return { module: moduleSpecifier(`${what}.module`, target.module), name: target.name ?? 'default' }
  }
  checkFunction(what, target)
  throw new Error('unreachable')
}

/**
 * A module named for another thread or process: a URL, an absolute path, or a package specifier.
 * A relative path would resolve against the library's own folder there, not the caller's.
 */
export function moduleSpecifier(what: string, module: string | URL): string {
  if (module instanceof URL) return module.href
  if (typeof module !== 'string') throw new TypeError(`${what} must be a string or a URL, not ${typeof module}`)
  if (/^\.\.?(\/|\\|$)/.test(module)) {
    throw new TypeError(`${what} '${module}' is relative: it would resolve against the library's folder in the process that loads it, not against your module; pass new URL('${module}', import.meta.url) or an absolute path`)
  }
  return isAbsolute(module) ? pathToFileURL(module).href : module
}

export class ProcessCore implements Waiter {
  readonly i32 = new Int32Array(new SharedArrayBuffer(PROCESS_WORDS * 4))
  waitIndex = STATE
  waitValue = STARTED
  name: string
  daemon: boolean
  /** Python's _identity: [1, 2] for Process-1:2. */
  readonly identity: number[]
  private target: Target | undefined
  private args: unknown[]
  private readonly resourceLimits: ResourceLimits | undefined
  private readonly exitNotify: SharedArrayBuffer | undefined
  private readonly lazyRegistry: boolean | undefined
  private readonly allClasses: boolean | undefined
  private readonly relay: RelayEnds | undefined
  private readonly untrackedFds: boolean | undefined
  private readonly direct: boolean | undefined
  /** A direct worker's thread, made by this one. */
  private worker: Worker | undefined
  /** A thread made ahead for it (ProcessOptions.ahead), until start() uses it or ends it. */
  private ahead: Worker | undefined
  /** A terminate() put off while a direct worker loads is due (dueAt). */
  private terminateDue = false
  private readonly preload: string[] | undefined
  readonly startMethod: 'thread' | 'spawn'
  private closed = false
  private readonly id = nextId++

  constructor(options: ProcessOptions) {
    const { target, args = [], name, daemon, resourceLimits, exitNotify, lazyRegistry, allClasses, preload, startMethod = 'thread', relay, untrackedFds, direct, ahead } = options
    if (preload !== undefined && !Array.isArray(preload)) throw new TypeError('preload must be an array of module specifiers or URLs')
    this.preload = preload?.map((m, i) => moduleSpecifier(`preload[${i}]`, m))
    if (startMethod !== 'thread' && startMethod !== 'spawn') throw new ValueError(`cannot find context for '${String(startMethod)}'`)
    this.startMethod = startMethod
    if (!Array.isArray(args)) throw new TypeError(`args must be an array, not ${typeof args}`)
    if (name !== undefined && typeof name !== 'string') throw new TypeError('name must be a string')
    if (daemon !== undefined && typeof daemon !== 'boolean') throw new TypeError('daemon must be a boolean')
    if (target !== undefined) targetOf(target, 'target', this.preload) // fail early on a bad target
    this.target = target
    this.args = args
    this.identity = nextChildIdentity()
    this.name = name ?? `Process-${this.identity.join(':')}`
    this.daemon = daemon ?? currentProcess().daemon
    this.resourceLimits = resourceLimits
    this.exitNotify = exitNotify
    this.lazyRegistry = lazyRegistry
    this.allClasses = allClasses
    this.relay = relay
    this.untrackedFds = untrackedFds
    this.direct = direct
    this.ahead = ahead
  }

  private checkOpen(): void {
    if (this.closed) throw new ValueError('process object is closed')
  }

  start(): void {
    this.checkOpen()
    if (Atomics.load(this.i32, STATE) !== INITIAL) throw new ValueError('cannot start a process twice')
    if (currentProcess().daemon) throw new ValueError('daemonic processes are not allowed to have children')
    if (this.target === undefined) throw new TypeError('target is required: a self-contained function or { module, name }')
    try {
      if (supervisor === undefined && this.mayStartDirect()) return this.startDirect()
    } finally {
      // A thread made ahead that startDirect did not take up (a supervisor starts this process,
      // or its data could not be made) is not to run.
      this.dropAhead()
    }
    // First: out of fds for it, start() throws an OSError, as Python's does (no pipe for the child).
    const sup = supervisorWorker()
    const data = this.data()
    // STARTED before the supervisor can see the message: its STOPPED must never be overwritten.
    Atomics.store(this.i32, STATE, STARTED)
    try {
      sup.postMessage({ op: 'spawn', id: this.id, sab: this.i32.buffer as SharedArrayBuffer, data, resourceLimits: this.resourceLimits, exitNotify: this.exitNotify, relay: this.relay } satisfies ToSupervisor)
    } catch (error) {
      Atomics.store(this.i32, STATE, INITIAL)
      releaseClientKey(data)
      throw new TypeError(`args cannot be sent to the process: ${(error as Error).message}`, { cause: error })
    }
    live.set(this.id, this)
    refSupervisor()
    // Python drops its reference to the target once the child has it.
    this.target = undefined
    this.args = []
  }

  /** ProcessData of start(), without the feeder and liveness table the starter adds. */
  private data(): ProcessData {
    // Proxies in the args are counted for the child (core/destination.ts): if it never takes them
    // up (killed before it loaded), its supervisor releases them once it ends.
    const target = targetOf(this.target!, 'target', this.preload)
    const clientKey = newClientKey()
    const failed = (keyServers: KeyServer[]): void => releaseClientKey({ clientKey, keyServers })
    const { value: args, servers } = reduceFor(clientKey, () => reduceTree(this.args, 'args', this.startMethod === 'spawn'), failed)
    return {
      ...(servers.length ? { clientKey, keyServers: servers } : {}),
      ...(threadBroker() ? { broker: threadBroker() } : {}),
      target,
      args,
      startMethod: this.startMethod,
      name: this.name,
      identity: this.identity,
      daemon: this.daemon,
      lazyRegistry: this.lazyRegistry,
      untrackedFds: this.untrackedFds,
      preload: this.preload,
      classModules: this.startMethod === 'spawn' && !this.allClasses ? portableModuleList() : classModuleList(),
      env: { ...process.env },
    }
  }

  /** start() without a supervisor: this thread creates the worker, and the supervisor watches it (see above). */
  private startDirect(): void {
    // The supervisor comes later, from the same folder: an app that bundled the library learns now.
    libraryFile(new URL('./supervisor-start.js', import.meta.url), 'start a process')
    const feeder = new MessageChannel()
    const data: ProcessData = { ...this.data(), feeder: feeder.port2, liveness: livenessTable(), state: this.i32.buffer as SharedArrayBuffer }
    Atomics.store(this.i32, OWN_CODE, UNSET)
    Atomics.store(this.i32, STATE, STARTED)
    let worker: Worker
    const ahead = this.ahead
    this.ahead = undefined
    try {
      if (ahead) ahead.postMessage(data, [feeder.port2])
      worker = ahead ?? createWorker((execArgv) => new Worker(bootstrapUrl, { workerData: data, transferList: [feeder.port2], resourceLimits: this.resourceLimits, execArgv }))
    } catch (error) {
      void ahead?.terminate()
      feeder.port1.close()
      releaseClientKey(data)
      if ((error as Error).name === 'DataCloneError') {
        Atomics.store(this.i32, STATE, INITIAL)
        throw new TypeError(`args cannot be sent to the process: ${(error as Error).message}`, { cause: error })
      }
      // As a supervisor does with a worker it could not create: Python's child would have failed.
      printProcessError(this.name, outOfFds(error, 'its thread cannot start'))
      markStopped(this.i32, 1, this.exitNotify)
      return
    }
    this.worker = worker
    // Its uncaught error is printed by the worker itself (bootstrap.ts), at once, as a Python
    // child prints its traceback: here it would wait for this thread's event loop, or be lost.
    // Node's own about the thread (out of memory under resourceLimits) only this thread hears.
    worker.on('error', (error: Error & { code?: string }) => {
      if (error?.code?.startsWith('ERR_WORKER')) printProcessError(this.name, error)
      // Never started for want of fds: no pid (supervisor-protocol.ts; the supervisor says so too
      // when it marks the end, which this event may come after, but not always before).
      markNeverStarted(this.i32, error)
    })
    // Its supervisor boots a little after the first worker is up, not beside the workers on the
    // same cores, nor in the way of their first tasks; at once when one ends (the supervisor alone
    // marks a worker stopped), this thread blocks (watch()) or kills one.
    worker.on('message', (m: unknown) => {
      if (m === LOADED && supervisor === undefined) setTimeout(trySupervisor, SUPERVISOR_DELAY_MS).unref()
    })
    worker.once('exit', () => {
      if (trySupervisor() === undefined) endedUnwatched(this.id)
    })
    // A daemon does not keep this thread alive (after the listeners, which would ref it again);
    // a non-daemon does, as Python joins it at exit.
    if (this.daemon) worker.unref()
    Atomics.store(this.i32, PID, worker.threadId)
    Atomics.notify(this.i32, PID)
    live.set(this.id, this)
    watch({ op: 'watch', id: this.id, sab: this.i32.buffer as SharedArrayBuffer, threadId: worker.threadId, port: feeder.port1, exitNotify: this.exitNotify, clientKey: data.clientKey, keyServers: data.keyServers })
    dueAt(performance.now() + NEVER_BOOTED_MS, () => this.neverBooted())
    this.target = undefined
    this.args = []
  }

  /** A direct worker whose first module never ran (NEVER_BOOTED_MS) is ended as one that never started: exitcode 1, no pid. */
  private neverBooted(): void {
    if (Atomics.load(this.i32, STATE) !== STARTED || Atomics.load(this.i32, BOOTED) !== 0) return
    printProcessError(this.name, new Error(`its thread did not start in ${NEVER_BOOTED_MS / 1000} s (no fds for it, for one): it is ended`))
    void this.worker?.terminate()
    noPidUnlessLoaded(this.i32)
    // Unwatched, it ends as one that ended unwatched; watched, here, before the supervisor's own
    // mark, which comes once this thread's loop lets the dead thread go.
    if (unwatched.some((m) => m.id === this.id)) return endedUnwatched(this.id)
    live.delete(this.id)
    markStopped(this.i32, 1, this.exitNotify)
  }

  /** Ends the thread made ahead for this process, which it does not use (a supervisor starts it, or its start failed). */
  dropAhead(): void {
    void this.ahead?.terminate()
    this.ahead = undefined
  }

  /**
   * Whether this thread may create the worker itself while it has no supervisor (see above): a
   * pool's daemon workers, and a thread's first processes, which would otherwise wait for the
   * supervisor's boot (a first process sent its first message ~185 ms after start(), against
   * ~105 ms for a bare fork). Not one with resourceLimits, whose end by running out of memory
   * only the thread that made it hears the code of, nor one with untracked fds (a broker).
   */
  private mayStartDirect(): boolean {
    if (this.startMethod !== 'thread') return false
    if (this.direct) return this.daemon
    return this.resourceLimits === undefined && this.untrackedFds !== true
  }

  /**
   * Set when this process ended because its supervisor did (supervisorLost): nothing of its own
   * was to blame. A pool replaces such a worker without counting it against its initializer.
   */
  lostWithSupervisor = false

  /** The supervisor ended (it failed): this process ended with it, with exitcode 1. */
  supervisorLost(): void {
    if (Atomics.load(this.i32, STATE) !== STARTED) return
    this.lostWithSupervisor = true
    if (this.worker) {
      // A direct worker is this thread's: it would run on unwatched. One still loading never
      // started: a supervisor fails to start for want of fds (EMFILE), as the worker would have.
      noPidUnlessLoaded(this.i32)
      void this.worker.terminate()
    }
    markStopped(this.i32, 1, this.exitNotify)
  }

  /** join()'s attempt: done once the supervisor marked the process stopped. */
  joinAttempt(): undefined | Pending {
    this.checkOpen()
    const state = Atomics.load(this.i32, STATE)
    if (state === INITIAL) throw new ValueError('can only join a started process')
    if (state === STOPPED) return undefined
    return park(this, this.i32, STATE, STARTED)
  }

  isAlive(): boolean {
    this.checkOpen()
    return this.state() === STARTED
  }

  get exitcode(): number | null {
    this.checkOpen()
    return this.state() === STOPPED ? Atomics.load(this.i32, EXITCODE) : null
  }

  /**
   * STATE, as a caller that looks at it sees it. A direct worker's end is marked by the supervisor
   * alone: one is started now if none is yet, for a thread that polls without returning to its
   * event loop (a loop that sleeps with Atomics.wait, as Python's `while p.is_alive():
   * time.sleep(0.1)`), where the timer that would start it never runs.
   */
  private state(): number {
    const state = Atomics.load(this.i32, STATE)
    if (state === STARTED && this.worker !== undefined && supervisor === undefined) trySupervisor()
    return state
  }

  get pid(): number | null {
    if (Atomics.load(this.i32, STATE) === INITIAL) return null
    // A direct worker's PID is filled by start(), and zeroed when the thread never started (EMFILE):
    // nothing is to come. A wait here blocked the event loop that hears of that, 30 s each.
    if (this.worker !== undefined) return Atomics.load(this.i32, PID) || null
    // The supervisor fills PID right after it created the worker: a short wait at most, unless
    // the supervisor never started (supervisorSilent).
    const known = () => Atomics.load(this.i32, PID) !== 0 || Atomics.load(this.i32, STATE) === STOPPED || supervisorSilent()
    blockOn(this, () => (known() ? true : park(this, this.i32, PID, 0, 100)), performance.now() + 30_000, () => true)
    return Atomics.load(this.i32, PID) || null
  }

  terminate(): void {
    this.signal(SIGTERM)
  }
  kill(): void {
    this.signal(SIGKILL)
  }
  private signal(sig: number): void {
    this.checkOpen()
    const state = Atomics.load(this.i32, STATE)
    if (state === INITIAL) throw new ValueError('can only terminate a started process')
    if (state === STOPPED) return
    const worker = this.worker
    if (worker === undefined) {
      supervisorWorker().postMessage({ op: 'kill', id: this.id, exitcode: -sig } satisfies ToSupervisor)
      return
    }
    // A direct worker (see above): the first code of the two wins, as the supervisor's override
    // does not undo an exit already under way.
    trySupervisor()
    Atomics.compareExchange(this.i32, OWN_CODE, UNSET, -sig)
    // Still importing: it ends itself once loaded (terminated now, it would leak the fd of the
    // file being read); after LOAD_GRACE_MS it is terminated anyway (an import that hangs).
    const load = Atomics.compareExchange(this.i32, LOAD, LOADING, KILL_PENDING)
    if (load === LOADED_WORD) void worker.terminate()
    else if (load === LOADING && !this.terminateDue) {
      // By this thread, blocked or not (wait.ts dueAt).
      this.terminateDue = true
      dueAt(performance.now() + LOAD_GRACE_MS, () => {
        if (Atomics.load(this.i32, STATE) === STARTED) void worker.terminate()
      })
    }
  }

  close(): void {
    if (this.closed) return
    if (Atomics.load(this.i32, STATE) === STARTED) {
      throw new ValueError('Cannot close a process while it is still running. You should first call join() or terminate().')
    }
    this.closed = true
  }

  setDaemon(value: boolean): void {
    if (Atomics.load(this.i32, STATE) !== INITIAL) throw new ValueError('process has already started')
    if (typeof value !== 'boolean') throw new TypeError('daemon must be a boolean')
    this.daemon = value
  }

  setName(value: string): void {
    if (typeof value !== 'string') throw new TypeError('name must be a string')
    this.name = value
  }

  describe(): string {
    if (this.closed) return `name='${this.name}' closed`
    const state = this.state()
    const status = state === INITIAL ? 'initial' : state === STARTED ? 'started' : `stopped exitcode=${this.exitcode}`
    const pid = state === INITIAL ? '' : ` pid=${Atomics.load(this.i32, PID)}`
    return `name='${this.name}'${pid} ${status}${this.daemon ? ' daemon' : ''}${this.startMethod === 'spawn' ? ' spawn' : ''}`
  }
}

