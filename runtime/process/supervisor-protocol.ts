// The wire between a thread that starts processes (process.ts) and its supervisor thread
// (supervisor-thread.ts): the messages each way and the words of a process's state buffer, which
// the supervisor writes when the process ends. Both ends import this module, neither the other.

import type { MessagePort, ResourceLimits } from 'node:worker_threads'
import type { RelayEnds } from '../ipc/stream-relay.js'
import { markEnded } from '../core/liveness.js'
import { writeAllSync } from '../core/stdio.js'
import type { KeyServer } from '../core/destination.js'
import type { BrokerAddress } from '../core/thread-broker.js'

// A process's state buffer (ProcessCore.i32).
// word  name      meaning
// 0     STATE     INITIAL=0 | STARTED=1 | STOPPED=2; join() sleeps on it
// 1     EXITCODE  valid once STOPPED: 0 on return, 1 after an uncaught error, n after
//                 process.exit(n), -15 after terminate(), -9 after kill()
// 2     PID       the worker's threadId (a spawned process's pid), once it exists (0 before)
// A thread its starter made itself (a direct one, see process.ts) has two more:
// 3     LOAD      LOADING=0 | LOADED_WORD=1 once its imports are done | KILL_PENDING=2 when a
//                 terminate() came first (the thread ends itself once loaded)
// 4     OWN_CODE  the exit code the thread gave itself (its 'exit' handler), or -sig of a
//                 terminate(), whichever came first; UNSET when it ended without either (out of
//                 memory under resourceLimits: exitcode 1)
// A spawned process whose streams are relayed (a pool worker's) has one more:
// 5     CUT       why the supervisor killed it, when its relay cut it off (stream-relay.ts
//                 BROKE_FRAMING or STOPPED_READING); 0 otherwise
export const STATE = 0
export const EXITCODE = 1
export const PID = 2
export const LOAD = 3
export const OWN_CODE = 4
export const CUT = 5
/** 1 once a direct thread's first module ran (bootstrap.ts): before anything of the user's loads. */
export const BOOTED = 6
export const PROCESS_WORDS = 7
export const INITIAL = 0
export const STARTED = 1
export const STOPPED = 2
export const LOADING = 0
export const LOADED_WORD = 1
export const KILL_PENDING = 2
export const UNSET = -0x80000000

/** Errors of a system out of something for the moment (fds, memory, threads), not of the code. */
const SHORTAGE = new Set(['ERR_WORKER_INIT_FAILED', 'EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM'])

/**
 * A thread that failed before its first module had loaded for want of fds (Node could not make
 * its channels, or open that module) never started: it gets no pid, as a spawn that failed, so
 * that a pool tries it again later instead of blaming an initializer (pool/dispatch.ts reap).
 */
export function markNeverStarted(i32: Int32Array, error: { code?: unknown } | undefined): void {
  if (SHORTAGE.has(String(error?.code))) noPidUnlessLoaded(i32)
}

/** A direct thread that had not loaded when it was lost never started, as far as anyone can tell: no pid. */
export function noPidUnlessLoaded(i32: Int32Array): void {
  if (Atomics.load(i32, LOAD) !== LOADED_WORD) Atomics.store(i32, PID, 0)
}

/**
 * Marks a process stopped with `code` and wakes whoever waits on it: join() on STATE, a pid
 * reader on PID (the worker may never have started), and an owner that waits on several
 * processes at once (a pool) on its own word, `exitNotify`.
 */
export function markStopped(i32: Int32Array, code: number, exitNotify: SharedArrayBuffer | undefined): void {
  Atomics.store(i32, EXITCODE, code)
  Atomics.store(i32, STATE, STOPPED)
  Atomics.notify(i32, STATE)
  Atomics.notify(i32, PID)
  if (exitNotify) {
    const word = new Int32Array(exitNotify)
    Atomics.add(word, 0, 1)
    Atomics.notify(word, 0)
  }
}

/**
 * A thread's bootstrap posts this once it has imported its modules. A thread terminated while
 * Node's loader still reads a module leaks that file's descriptor for good (about one per kill
 * in tight loops, until EMFILE): so the supervisor puts a terminate() off until then (and a direct
 * thread's starter, with the LOAD word).
 */
export const LOADED = 'aioprocessing:loaded'
/** How long a terminate() waits for a thread that never says LOADED (its import hangs). */
export const LOAD_GRACE_MS = 5_000

/** What the worker bootstrap receives. */
export interface ProcessData {
  /**
   * A thread-context process whose fds Node must not track (a manager server serving fast lanes:
   * it opens FIFOs with fs and hands them to sockets, which close them; tracked, each would look
   * open still, and be closed again, as someone else's fd, when the thread ends).
   */
  untrackedFds?: boolean
  target: { source: string } | { module: string; name: string }
  /** Set by the supervisor: the child's port to its feeder, and the liveness table. */
  feeder?: MessagePort
  liveness?: SharedArrayBuffer
  args: unknown
  name: string
  identity: number[]
  daemon: boolean
  lazyRegistry?: boolean
  startMethod?: 'thread' | 'spawn'
  /** The modules that register the shareable classes (core/transfer.ts registerClassModule). */
  classModules: string[]
  /** Modules imported before the target (ProcessOptions.preload). */
  preload?: string[]
  /**
   * The starter's environment when start() was called, as a Python child gets os.environ then:
   * a thread the supervisor makes (or a spare, booted earlier) would have the supervisor's copy.
   */
  env?: Record<string, string | undefined>
  /** A direct thread's state buffer: it writes LOAD and OWN_CODE there (see WatchMessage). */
  state?: SharedArrayBuffer
  /** The client key its first thread uses with manager servers, for which its args' proxies were counted at `keyServers` (core/destination.ts). */
  clientKey?: string
  keyServers?: KeyServer[]
  /** The spawn context's broker its starter used, which it uses too (core/thread-broker.ts). */
  broker?: BrokerAddress
}

/** An error that ended process `name`, on stderr at once, as Python prints a child's traceback: `Process <name>:` and the stack. */
export function printProcessError(name: string, error: unknown): void {
  writeAllSync(2, `Process ${name}:\n${(error as Error | undefined)?.stack ?? String(error)}\n`)
}

/**
 * A direct thread's own report of its end (see process.ts), installed by its first module: its
 * exit code in OWN_CODE, which its supervisor cannot see otherwise, and its uncaught error printed
 * at once, as Python's child prints its traceback (its starter hears of it only in its own event
 * loop). Returns the uninstall.
 */
export function reportOwnEnd(state: Int32Array, name: string): () => void {
  // Node ends a thread whose top-level await can never settle with 13, but tells its 'exit'
  // listeners 0: process.exitCode has the 13.
  const exit = (code: number): void => void Atomics.compareExchange(state, OWN_CODE, UNSET, Number(process.exitCode ?? code))
  const uncaught = (error: Error): void => {
    if (process.listenerCount('uncaughtException') === 0) printProcessError(name, error)
  }
  process.on('exit', exit)
  process.on('uncaughtExceptionMonitor', uncaught)
  return () => {
    process.off('exit', exit)
    process.off('uncaughtExceptionMonitor', uncaught)
  }
}

/** Makes this process's (or thread's) environment `env`, the one its starter had at start(). */
export function applyEnv(env: Record<string, string | undefined> | undefined): void {
  if (!env) return
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k]
  for (const [k, v] of Object.entries(env)) if (v !== undefined && process.env[k] !== v) process.env[k] = v
}

/**
 * The workerData of a thread made ahead of its process (process.ts threadsAhead), whose
 * ProcessData comes in its first message. One made for a pool's first task runs that pool's first
 * module, which takes the task from `offers`, then imports `boot` (a module that exports boot.ts's
 * boot()) and runs it (pool/first-task.ts).
 */
export interface AheadData {
  ahead: true
  offers?: MessagePort
  boot?: string
}

/** The supervisor thread's workerData. */
export interface SupervisorData {
  liveness: SharedArrayBuffer
  /** The port to the thread's own supervisor's broker, when this thread is a process itself. */
  upstream?: MessagePort
  classModules: string[]
  /** What a spawned spare loads while it waits (transfer.ts portableModuleList). */
  portableModules: string[]
  /** Word 0 becomes 1 once the supervisor's first module runs and 2 once its code loaded (-1: that failed): a starter that blocks sees how it started. */
  up: SharedArrayBuffer
}

/** Start process `id`: `sab` is its state buffer; word 0 of `exitNotify` is bumped when it ends. */
export interface SpawnMessage {
  op: 'spawn'
  id: number
  sab: SharedArrayBuffer
  data: ProcessData
  resourceLimits?: ResourceLimits
  exitNotify?: SharedArrayBuffer
  /** The shared-memory pipe end the child's DATA_IN_FD and DATA_OUT_FD are relayed to; word 0 of `notify` is bumped when records arrive. */
  relay?: RelayEnds
}
/** End process `id` (terminate or kill); `exitcode` is what it will report. */
export interface KillMessage {
  op: 'kill'
  id: number
  exitcode: number
}
/** A port whose feeder and broker requests the supervisor serves (ipc/feeder-client.ts sends it). */
export interface ConnectMessage {
  op: 'connect'
  port: MessagePort
}
/**
 * Watch a thread its starter made itself (the first pool of a thread, which need not wait for a
 * supervisor to boot first): `port` is the thread's feeder port, served as a spawned one's is; its
 * 'close' says the thread ended, however it ended (even before this message came), and the
 * supervisor marks it stopped with OWN_CODE, or 1.
 */
export interface WatchMessage {
  op: 'watch'
  id: number
  sab: SharedArrayBuffer
  threadId: number
  port: MessagePort
  exitNotify?: SharedArrayBuffer
  /** Its ProcessData's: released when it ends. */
  clientKey?: string
  keyServers?: KeyServer[]
}
export type ToSupervisor = SpawnMessage | KillMessage | ConnectMessage | WatchMessage

/** A watched thread has ended: its thread id ended in `liveness`, the process stopped with its own code (or 1). */
export function markWatchedStopped(m: WatchMessage, liveness: SharedArrayBuffer): void {
  const i32 = new Int32Array(m.sab)
  markEnded(m.threadId, liveness)
  const code = Atomics.load(i32, OWN_CODE)
  // Its first module never ran (it set no exit code, nor said it loaded): Node could not open it or
  // make the thread (EMFILE). Its starter's 'error' event may come after this: it is said here.
  if (code === UNSET && Atomics.load(i32, LOAD) === LOADING) Atomics.store(i32, PID, 0)
  markStopped(i32, code === UNSET ? 1 : code, m.exitNotify)
}

/** Process `id` has ended (its STATE word already says STOPPED): the starter may unref the supervisor. */
export interface ExitedMessage {
  op: 'exited'
  id: number
}
export type FromSupervisor = ExitedMessage

/**
 * The loud end of a dispatcher: typed `never`, so that a message type added here and not handled
 * fails the build; at run time a message no type allows is a bug on the other end.
 */
export function unknownMessage(channel: string, m: never): never {
  throw new Error(`unknown message ${channel}: ${JSON.stringify(m)}`)
}
