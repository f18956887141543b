// How the supervisor starts a 'spawn' process (the node command, its fds), and the processes it
// starts before its own code has loaded. The supervisor thread's first module
// (supervisor-start.ts) loads this alone, holds the messages that come meanwhile and starts the
// first processes they ask for at once (a few, and only while fds are to spare: the code still has
// to load); supervisor-thread.ts then takes those over and starts the rest. A first process pool
// waited for the supervisor's ~170 KB to compile (~25 ms of a fresh thread) before its processes
// were forked; they boot for ~75 ms, so the supervisor is ready long before they say anything.

import { spawn as spawnChild, type ChildProcess, type StdioOptions } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { workerData, type MessagePort } from 'node:worker_threads'
import { workerExecArgv } from '../core/exec-argv.js'
import { DATA_IN_FD, DATA_OUT_FD, KERNEL_WATCH_ARG, PARENT_FD } from './spawn-fds.js'
import type { SpawnMessage, SupervisorData, ToSupervisor } from './supervisor-protocol.js'

const spawnMain = fileURLToPath(new URL('./spawn-main.js', import.meta.url))

/**
 * util-linux's setpriv, on Linux: a process started through `setpriv --pdeathsig KILL` is killed
 * by the kernel when this thread ends (with its process, however that ends). Without it, each
 * spawned process boots an I/O thread to watch its PARENT_FD. AIOPROCESSING_NO_PDEATHSIG=1 makes
 * the library do without it (the tests run both ways). A setpriv older than util-linux 2.33 (2018)
 * has no --pdeathsig and would end every process it started: its binary must name the option
 * (a look at its bytes, ~0.5 ms, where asking it would spawn a process).
 */
let setpriv: string | undefined | null = null
function setprivPath(): string | undefined {
  if (setpriv === null) setpriv = process.platform === 'linux' && !process.env.AIOPROCESSING_NO_PDEATHSIG ? ['/usr/bin/setpriv', '/bin/setpriv'].find(knowsPdeathsig) : undefined
  return setpriv
}

function knowsPdeathsig(path: string): boolean {
  try {
    return readFileSync(path).includes('pdeathsig')
  } catch {
    return false
  }
}

/** The node flags a spawn needs of its own: a heap limit is one, so such a process cannot be a spare booted without it. */
export function ownFlags(m: SpawnMessage): string[] | undefined {
  const heapMb = m.resourceLimits?.maxOldGenerationSizeMb
  return heapMb ? [`--max-old-space-size=${heapMb}`] : undefined
}

export function startProcess(execArgv: string[] = []): ChildProcess {
  // The class modules go as arguments (their portable parts: what a spawned process loads), so
  // that a spare loads them while it waits. Fd PARENT_FD
  // is a pipe whose end here stays open, unread, for the child's life: it tells the child when
  // this process is gone.
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc']
  stdio[PARENT_FD] = 'pipe'
  stdio[DATA_IN_FD] = 'pipe'
  stdio[DATA_OUT_FD] = 'pipe'
  const kernel = setprivPath()
  const node = [process.execPath, ...workerExecArgv(), ...execArgv, spawnMain, ...(kernel ? [KERNEL_WATCH_ARG] : []), ...(workerData as SupervisorData).portableModules]
  const [file, ...args] = kernel ? [kernel, '--pdeathsig', 'KILL', '--', ...node] : node
  const child = spawnChild(file, args, { stdio, serialization: 'advanced' })
  // A spawn that failed at once (EMFILE: no fd for its pipes) has no stdio and no channel; its
  // 'error' event comes next. Reading its stdio threw here, in a spare's refill that killed this
  // thread, and with it every process it supervised (a manager's server among them).
  if (!child.stdio) return child
  ;(child.stdio[PARENT_FD] as Socket | null)?.unref()
  // Read only when relayed (a pool worker's); otherwise it never keeps this thread alive.
  for (const fd of [DATA_IN_FD, DATA_OUT_FD]) ((child.stdio as unknown as (Socket | null)[])[fd])?.unref()
  return child
}

/** A process started before the supervisor's code loaded: what it emitted meanwhile waits to be emitted again. */
export interface EarlyProcess {
  child?: ChildProcess
  /** What startProcess threw. */
  error?: unknown
  events: [string, unknown[]][]
  /** Its recording listeners, to be removed (only those: Node's own stay). */
  listeners: [string, (...args: unknown[]) => void][]
}

const EARLY_EVENTS = ['error', 'exit', 'message'] as const

/** At most this many processes start before the supervisor's code has loaded: a first pool's, on most machines. */
const EARLY_MAX = 4
/**
 * Fds that must stay free for a process to start before the supervisor's code has loaded. Each
 * start keeps four here (its pipes and channel) and opens a few more for a moment, and the
 * loader opens the code's files one at a time: under `ulimit -n 64`, 14 processes started at once
 * took the last fds, the code failed to load (EMFILE), and the supervisor ended with every process
 * it had started. A process not started early is started by the supervisor's code, as any other.
 */
const FDS_KEPT_FREE = 32

let fdLimit: number | undefined
/** Whether this process has FDS_KEPT_FREE fds to spare (Linux's /proc tells; elsewhere nothing starts early). */
function fdsToSpare(): boolean {
  try {
    fdLimit ??= Number(/^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1].replace('unlimited', 'Infinity'))
    return fdLimit - readdirSync('/proc/self/fd').length >= FDS_KEPT_FREE
  } catch {
    return false
  }
}
const held: ToSupervisor[] = []
const early = new Map<number, EarlyProcess>()

/** Ports of watched threads (WatchMessage) whose 'close', the thread's end, came while held. */
const closedPorts = new WeakSet<MessagePort>()
const noteClosed = new WeakMap<MessagePort, () => void>()

function hold(m: ToSupervisor): void {
  held.push(m)
  if (m.op === 'watch') {
    const closed = (): void => void closedPorts.add(m.port)
    noteClosed.set(m.port, closed)
    m.port.once('close', closed)
  }
  if (m.op !== 'spawn' || m.data.startMethod !== 'spawn' || early.size >= EARLY_MAX || !fdsToSpare()) return
  const record: EarlyProcess = { events: [], listeners: [] }
  early.set(m.id, record)
  try {
    const child = (record.child = startProcess(ownFlags(m)))
    // An 'error' with no listener would throw, and end this thread with every process it watches.
    for (const event of EARLY_EVENTS) {
      const listener = (...args: unknown[]): void => void record.events.push([event, args])
      record.listeners.push([event, listener])
      child.on(event, listener)
    }
  } catch (error) {
    record.error = error
  }
}

/** Holds the supervisor's messages until its code has loaded, starting the processes they ask for. */
export function holdMessages(port: MessagePort): void {
  port.on('message', hold)
}

/** The messages held, in order; none is held from now on. */
export function heldMessages(port: MessagePort): ToSupervisor[] {
  port.off('message', hold)
  return held.splice(0)
}

/** The process started early for spawn `id`, its recording listeners removed; its events are the caller's to emit again. */
export function takeEarly(id: number): EarlyProcess | undefined {
  const record = early.get(id)
  if (!record) return undefined
  early.delete(id)
  for (const [event, listener] of record.listeners) record.child?.off(event, listener)
  return record
}

/** Whether a held watch message's port closed before the supervisor's code could listen; it is not watched here from now on. */
export function closedBeforeLoad(port: MessagePort): boolean {
  const closed = noteClosed.get(port)
  if (closed) port.off('close', closed)
  return closedPorts.has(port)
}
