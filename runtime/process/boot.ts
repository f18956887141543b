// A process thread's start, as a function: registers the shareable types, rebuilds the args into
// working objects over the parent's shared memory, then runs the target. A thread's first module
// runs it (bootstrap.ts; pool/first-task.ts after a first pool's first task), as a first module's
// work (core/first-module.ts).
import { writeStdioDirectly } from '../core/stdio.js'
import type { ProcessData } from './process.js'
import { setCurrentProcess } from '../core/current.js'
import { loadClassesFor, loadSpareClassModules, missingModules, rebuildTree } from '../core/transfer.js'
import { loadFunction, preloadModules } from '../core/source.js'
import { installLivenessTable } from '../core/liveness.js'
import { applyEnv, BOOTED, KILL_PENDING, LOAD, LOADED, LOADED_WORD, LOADING, reportOwnEnd } from './supervisor-protocol.js'
import { installFeederPort } from '../ipc/feeder-client.js'
import { setOwnClientKey } from '../core/destination.js'
import { setThreadBroker } from '../core/thread-broker.js'
import { finishProcess } from '../core/process-end.js'
import { parentPort, receiveMessageOnPort, threadId, workerData } from 'node:worker_threads'

/**
 * `keepEnv`: the thread already ran a task (a first pool's first, pool/first-task.ts) in the
 * environment it was made with, which is its starter's at start(): what that task set in it stays,
 * as it would have, run after the start.
 */
export async function boot(keepEnv = false): Promise<void> {
  // The library's classes (the modules the parent named), so that shared objects arriving later
  // (in queue items) can be rebuilt. A spare loads those its supervisor knew of while it waits.
  // Only JavaScript ones: a module that needs a loader (a .ts one under tsx) loads after the
  // process's preload modules, which may register it.
  const registry = workerData?.spare ? loadSpareClassModules(workerData.classModules as string[]) : undefined
  registry?.catch(() => {}) // awaited below; a failure is thrown there
  writeStdioDirectly()

  // A spare (see supervisor-thread.ts) has loaded everything above and waits for its process.
  if (registry) await registry
  // So does a thread made ahead of its data (process.ts threadsAhead), whose data came long before it booted.
  const data: ProcessData = workerData?.spare || workerData?.ahead
    ? (receiveMessageOnPort(parentPort!)?.message ?? (await new Promise((resolve) => parentPort!.once('message', resolve))))
    : workerData
  // A direct thread (process.ts) says it booted, and reports its own end (its exit code, its uncaught error).
  const state = data.state ? new Int32Array(data.state) : undefined
  if (state) Atomics.store(state, BOOTED, 1)
  if (state) reportOwnEnd(state, data.name)
  if (!keepEnv) applyEnv(data.env)
  // Before any proxy is rebuilt: the args' were counted for this key (core/destination.ts).
  setOwnClientKey(data.clientKey)
  setThreadBroker(data.broker)
  if (data.liveness) installLivenessTable(data.liveness)
  if (data.feeder) installFeederPort(data.feeder)
  setCurrentProcess({ name: data.name, pid: threadId, daemon: data.daemon, identity: data.identity })
  // The preload modules first: one may register the loader (tsx) that a class module needs (a
  // primitive of your own written in TypeScript).
  await preloadModules(data.preload)
  // A pool worker loads them itself when a task needs them (see pool-loop.ts), unless its own
  // arguments (a pool's initargs) hold shared objects: those may hand out others (a Value's lock).
  await loadClassesFor(data.classModules, data.args, data.lazyRegistry)
  const target = await loadFunction(data.target)
  // Shared objects of classes this thread has not loaded (a user's own primitives) bring their module.
  for (const module of missingModules(data.args)) await import(module)
  // Every import is done: the supervisor may terminate this thread now (see LOADED there).
  parentPort?.postMessage(LOADED)
  // A direct thread ends itself if a terminate() came while it loaded (its OWN_CODE says which).
  if (state && Atomics.compareExchange(state, LOAD, LOADING, LOADED_WORD) === KILL_PENDING) process.exit()
  await target(...(rebuildTree(data.args) as unknown[]))
  await finishProcess()
  // Python ends a process when run() returns (os._exit), whatever timers or handles are left.
  process.exit(0)
}
