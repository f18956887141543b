// The supervisor thread (see process.ts): creates process workers and turns each one's end into
// the STOPPED state word, whatever the caller's own thread is doing.
import { MessageChannel, Worker, parentPort, receiveMessageOnPort, workerData, type MessagePort, type ResourceLimits } from 'node:worker_threads'
import { cancelFeed, enqueueFeed, type FeedCancelMessage, type FeedMessage } from '../ipc/feeder.js'
import { handleBrokerMessage, type BrokerMessage } from '../ipc/broker.js'
import { installLivenessTable, markEnded } from '../core/liveness.js'
import { relay } from '../ipc/stream-relay.js'
import { releaseClientKey } from '../ipc/gone.js'
import { DATA_IN_FD, DATA_OUT_FD } from './spawn-fds.js'
import { CUT, LOAD_GRACE_MS, LOADED, markNeverStarted, markStopped, markWatchedStopped, PID, printProcessError, unknownMessage, type ConnectMessage, type ExitedMessage, type ProcessData, type SpawnMessage, type SupervisorData, type ToSupervisor, type WatchMessage } from './supervisor-protocol.js'
import { createWorker } from '../core/exec-argv.js'
import { outOfFds } from '../core/errors.js'
import { closedBeforeLoad, heldMessages, ownFlags, startProcess, takeEarly } from './start-process.js'
import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import { availableParallelism } from 'node:os'

const { liveness, upstream, classModules } = workerData as SupervisorData
upstream?.unref()
installLivenessTable(liveness)

/** Feeder requests come from the thread that owns this supervisor and from every child it started. */
function dispatch(m: FeedMessage | FeedCancelMessage | BrokerMessage | ConnectMessage): void {
  switch (m.op) {
    case 'feed':
      return enqueueFeed(m)
    case 'feed-cancel':
      return cancelFeed(m)
    case 'store':
    case 'fetch':
      return handleBrokerMessage(m, upstream)
    case 'connect':
      return listen(m.port)
    default:
      unknownMessage("to the supervisor's port", m)
  }
}

function listen(port: MessagePort): void {
  port.on('message', dispatch)
  port.unref()
}

/** Closes a child's port, after taking every message it had sent and not yet delivered. */
function closeDrained(port: MessagePort): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) dispatch(m.message)
  port.close()
}

interface Child {
  worker: { terminate(): unknown }
  exitcodeOverride: number | null
  /** A thread: false until its bootstrap says LOADED; a terminate() meanwhile waits for it. */
  loaded?: boolean
  terminating?: boolean
}

/** Terminates a child, or for a thread still importing, as soon as it is done (or LOAD_GRACE_MS). */
function terminateChild(child: Child): void {
  if (child.loaded !== false) {
    void child.worker.terminate()
    return
  }
  if (child.terminating) return
  child.terminating = true
  setTimeout(() => void child.worker.terminate(), LOAD_GRACE_MS).unref()
}
const children = new Map<number, Child>()
const bootstrap = new URL('./bootstrap.js', import.meta.url)

function spawn(m: SpawnMessage): void {
  const i32 = new Int32Array(m.sab)
  const stop = (code: number): void => {
    markStopped(i32, code, m.exitNotify)
    releaseClientKey(m.data)
    children.delete(m.id)
    parentPort!.postMessage({ op: 'exited', id: m.id } satisfies ExitedMessage)
  }
  if (m.data.startMethod === 'spawn') return spawnProcess(m, i32, stop)
  let worker: Worker
  const feeder = new MessageChannel()
  listen(feeder.port1)
  try {
    const childData: ProcessData = { ...m.data, feeder: feeder.port2, liveness }
    // A thread whose fds must not be tracked (see ProcessData.untrackedFds) is made for it, not taken from the spares.
    const untracked = m.data.untrackedFds === true
    worker = (untracked ? undefined : takeSpare(m.resourceLimits, childData)) ??
      createWorker((execArgv) => new Worker(bootstrap, { workerData: childData, transferList: [feeder.port2], resourceLimits: m.resourceLimits, execArgv, trackUnmanagedFds: !untracked }))
  } catch (error) {
    printProcessError(m.data.name, outOfFds(error, 'its thread cannot start'))
    stop(1)
    return
  }
  const child: Child = { worker, exitcodeOverride: null, loaded: false }
  children.set(m.id, child)
  const loaded = loading()
  worker.on('message', (message: unknown) => {
    if (message !== LOADED) return
    loaded()
    child.loaded = true
    if (child.terminating) void worker.terminate()
  })
  Atomics.store(i32, PID, worker.threadId)
  Atomics.notify(i32, PID)
  worker.on('error', (error: Error & { code?: string }) => {
    // Python prints the child's traceback, prefixed with "Process <name>:", and exits with 1.
    printProcessError(m.data.name, error)
    markNeverStarted(i32, error)
  })
  const threadId = worker.threadId
  worker.on('exit', (code) => {
    loaded()
    markEnded(threadId, liveness)
    stop(child.exitcodeOverride ?? code)
    closeDrained(feeder.port1)
  })
}

/**
 * A thread its starter created (process.ts, direct): its feeder port is served as a spawned one's,
 * and its 'close' (every message delivered before it) is the thread's end.
 */
function watch(m: WatchMessage): void {
  const ended = (): void => {
    markWatchedStopped(m, liveness)
    releaseClientKey(m)
    parentPort!.postMessage({ op: 'exited', id: m.id } satisfies ExitedMessage)
  }
  // A thread that ended while this module loaded: its port closed then, and says so no more.
  if (closedBeforeLoad(m.port)) {
    closeDrained(m.port)
    return ended()
  }
  listen(m.port)
  m.port.once('close', ended)
}

/**
 * The 'spawn' start method: a new Node process, given its ProcessData over the IPC channel. Its
 * exit code is Python's: the process's own, or minus the signal that ended it.
 */
function spawnProcess(m: SpawnMessage, i32: Int32Array, stop: (code: number) => void): void {
  let child: ChildProcess
  const flags = ownFlags(m)
  // One started before this module loaded (start-process.ts) comes first: it has booted longest.
  const early = takeEarly(m.id)
  try {
    if (!early) child = flags ? startProcess(flags) : (spareProcesses.take() ?? startProcess())
    else {
      // It counts toward the spares as a spawn that found none (none exists before this module
      // loads), whether or not it could start.
      if (!flags) spareProcesses.counted()
      if (early.error) throw early.error
      child = early.child!
    }
  } catch (error) {
    printProcessError(m.data.name, outOfFds(error, 'its thread cannot start'))
    stop(1)
    return
  }
  let ended = false
  const entry: Child = {
    worker: { terminate: () => child.kill(entry.exitcodeOverride === -9 ? 'SIGKILL' : 'SIGTERM') },
    exitcodeOverride: null,
  }
  children.set(m.id, entry)
  const loaded = loading()
  const end = (code: number): void => {
    loaded()
    if (ended) return
    ended = true
    stop(code)
  }
  child.on('message', (message: unknown) => {
    if (message === LOADED) loaded()
  })
  child.on('error', (error) => {
    printProcessError(m.data.name, error)
    end(1)
  })
  // What an early process emitted before these listeners, once they all listen.
  const replay = (): void => {
    for (const [event, args] of early?.events ?? []) child.emit(event, ...args)
  }
  // The spawn failed at once (EMFILE...): nothing to relay or send; its 'error' ends it.
  if (!child.stdio) return replay()
  // A relayed pipe (a pool worker's) ends after the process: the pool must find everything the
  // process wrote before it ended in its pipe by the time the process is marked stopped.
  const stdio = child.stdio as unknown as (Socket | null)[]
  const [to, from] = [stdio[DATA_IN_FD], stdio[DATA_OUT_FD]]
  // A process that breaks the relay's framing, or stops reading its tasks, is killed: its pool
  // then fails the task it ran, saying why. One that already ended (its results wait in a full
  // ring, so their socket is still open) was not cut off.
  const relayed = m.relay && to && from
    ? relay({ to, from }, m.relay, (why) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        Atomics.store(i32, CUT, why)
        child.kill('SIGKILL')
      })
    : undefined
  if (relayed) from!.ref()
  child.on('exit', (code, signal) => {
    const exitcode = signal ? -(constants.signals[signal] ?? 1) : (code ?? 1)
    if (relayed) void relayed.then(() => end(exitcode))
    else end(exitcode)
  })
  if (child.pid !== undefined) {
    Atomics.store(i32, PID, child.pid)
    Atomics.notify(i32, PID)
  }
  child.send(m.data, (error) => {
    if (error && !ended) child.kill('SIGKILL')
  })
  replay()
}

// Spares: workers and processes booted ahead (Node's start-up and the library's module loading,
// ~60 ms for a worker and ~150 ms for a process here) and waiting for a process to run, as
// Python's forkserver keeps a server ready to fork. Kept after the first spawn only, as many as
// the largest burst of spawns in one turn (a pool's size), up to the CPU count, and booted once
// spawning has been quiet for SPARE_DELAY_MS, what was spawned has loaded, and SPARE_AFTER_LOAD_MS
// have passed since, so that they never slow the spawns asked for now:
// - on a slow machine a process took longer than SPARE_DELAY_MS to load, and spares booting beside
//   it made a first process pool ~20% slower;
// - a process that has loaded runs its target at once, and its first messages went out while a
//   spare process was forked from this whole process (its threads wait on the copy): a first
//   spawned process's first message came ~25 ms later (from loaded to the message: ~40 ms with the
//   spare booting then, ~15 ms without).
// The wait after a load is short: a spawn meanwhile starts the quiet time again, so processes
// replaced one after the other (maxtasksperchild=1) every L + SPARE_AFTER_LOAD_MS or sooner (L:
// their load, if longer than SPARE_DELAY_MS) get no spares, where every L was the bound before.
// A spare never keeps anything alive; a spare process ends with this process.

/** Spares boot once spawning has been quiet this long (AIOPROCESSING_SPARE_DELAY_MS)... */
const SPARE_DELAY_MS = Number(process.env.AIOPROCESSING_SPARE_DELAY_MS) || 150
/** ...and this long after the last load. */
const SPARE_AFTER_LOAD_MS = SPARE_DELAY_MS / 3

/** Threads and processes spawned that have not said LOADED (nor ended) yet. */
let loadingNow = 0
/** Spares whose quiet time is over, waiting for loadingNow to reach 0. */
const refillsDue = new Set<Spares<Spare>>()

/** Counts a spawned thread or process as loading; the function returned says it has loaded or ended (once). */
function loading(): () => void {
  loadingNow++
  let done = false
  return () => {
    if (done) return
    done = true
    if (--loadingNow > 0) return
    for (const spares of refillsDue) spares.schedule(SPARE_AFTER_LOAD_MS)
    refillsDue.clear()
  }
}

interface Spare {
  on(event: 'exit' | 'error', listener: () => void): unknown
  removeAllListeners(event: 'exit' | 'error'): unknown
}

class Spares<S extends Spare> {
  private readonly idle: S[] = []
  private target = 0
  private burst = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly make: () => S) {}

  /** Counts a spawn in its burst, which sets how many spares to keep, and plans the next refill. */
  counted(): void {
    if (this.burst++ === 0) setImmediate(() => (this.burst = 0))
    this.target = Math.min(Math.max(this.target, this.burst), availableParallelism())
    this.schedule()
  }

  /** A booted spare, or undefined; either way the spawn is counted. */
  take(): S | undefined {
    this.counted()
    const spare = this.idle.shift()
    if (!spare) return undefined
    spare.removeAllListeners('exit')
    spare.removeAllListeners('error')
    return spare
  }

  /** Refills `ms` from now, once nothing spawned is loading. */
  schedule(ms = SPARE_DELAY_MS): void {
    if (this.timer) clearTimeout(this.timer)
    refillsDue.delete(this)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (loadingNow > 0) refillsDue.add(this)
      else this.refill()
    }, ms)
  }

  refill(): void {
    while (this.idle.length < this.target) this.boot()
  }

  private boot(): void {
    if (this.idle.length >= this.target) return
    let spare: S
    try {
      spare = this.make()
    } catch {
      this.target = this.idle.length // no fds for one now (createWorker): the next spawn makes its own
      return
    }
    const drop = (): void => {
      const i = this.idle.indexOf(spare)
      if (i >= 0) this.idle.splice(i, 1)
    }
    spare.on('exit', drop)
    spare.on('error', drop) // a spare that failed to boot is not used; the next spawn makes its own
    this.idle.push(spare)
  }
}

const spareWorkers = new Spares(() => {
  const worker = createWorker((execArgv) => new Worker(bootstrap, { workerData: { spare: true, classModules }, execArgv }))
  worker.unref()
  return worker
})

function takeSpare(resourceLimits: ResourceLimits | undefined, data: ProcessData): Worker | undefined {
  // A worker with resourceLimits is made for its process: such spawns neither use nor call for spares.
  if (resourceLimits && Object.keys(resourceLimits).length) return undefined
  const worker = spareWorkers.take()
  if (!worker) return undefined
  worker.ref()
  worker.postMessage(data, [data.feeder!])
  return worker
}

const spareProcesses = new Spares(() => {
  const child = startProcess()
  child.unref()
  child.channel?.unref()
  return child
})

function onMessage(m: ToSupervisor): void {
  switch (m.op) {
    case 'spawn':
      spawn(m)
      break
    case 'connect':
      listen(m.port)
      break
    case 'watch':
      watch(m)
      break
    case 'kill': {
      const child = children.get(m.id)
      if (!child) break // already ended
      child.exitcodeOverride = m.exitcode
      terminateChild(child)
      break
    }
    default:
      unknownMessage('to the process supervisor', m)
  }
}

for (const m of heldMessages(parentPort!)) onMessage(m)
parentPort!.on('message', onMessage)
