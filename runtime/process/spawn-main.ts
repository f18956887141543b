// A process of the 'spawn' start method (see supervisor-thread.ts): it takes its ProcessData from
// the IPC channel, loads the library's classes so that the proxies in its arguments rebuild, runs
// the target, and ends as a Python process does after run().
import { setCurrentProcess } from '../core/current.js'
import { loadClassesFor, loadSpareClassModules, rebuildTree, missingModules } from '../core/transfer.js'
import { loadFunction, preloadModules } from '../core/source.js'
import type { ProcessData } from './process.js'
import { setOwnClientKey } from '../core/destination.js'
import { setThreadBroker } from '../core/thread-broker.js'
import { finishProcess } from '../core/process-end.js'
import { applyEnv, LOADED, printProcessError } from './supervisor-protocol.js'
import { KERNEL_WATCH_ARG, PARENT_FD } from './spawn-fds.js'
import { exitWithParent } from '../ipc/io-client.js'

// A spawned process never outlives its parent, however the parent ends (see PARENT_FD): the
// kernel sends it SIGKILL (KERNEL_WATCH_ARG), or its I/O thread watches, even while this thread
// blocks or spins. (That thread started just before the target instead, a first message came
// ~4 ms sooner, but a spawned manager server then served its blocking lock pairs ~10% slower,
// repeatably, for reasons not found.)
const kernelWatches = process.argv[2] === KERNEL_WATCH_ARG
exitWithParent(PARENT_FD, kernelWatches)
const untilData = (): void => process.exit(0) // a spare whose parent went before it was used
process.once('disconnect', untilData)
const arrived = new Promise<ProcessData>((resolve) => process.once('message', (m) => resolve(m as ProcessData)))
// A process spawned for a start() finds its data waiting. A spare (see supervisor-thread.ts)
// loads the library's classes while it waits (the JavaScript modules named in its arguments; one
// that needs a loader loads after the preload modules, which may register it).
let data = await Promise.race([arrived, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))])
if (!data) {
  await loadSpareClassModules(process.argv.slice(2))
  data = await arrived
}
process.off('disconnect', untilData)
// The channel only brought the data: it must not keep this process alive. A daemon ends with its
// parent, as Python terminates daemonic children at exit (the channel closes when the parent goes).
process.channel?.unref()
if (data.daemon) process.once('disconnect', () => process.exit(1))
applyEnv(data.env)
// Before any proxy is rebuilt: the args' were counted for this key (core/destination.ts).
setOwnClientKey(data.clientKey)
setThreadBroker(data.broker)
setCurrentProcess({ name: data.name, pid: process.pid, daemon: data.daemon, identity: data.identity })

try {
  // The preload modules first, as in a thread (bootstrap.ts): one may register a class module's loader.
  await preloadModules(data.preload)
  // A pool worker loads the classes when a task needs them: a first pool's process does not wait for them.
  await loadClassesFor(data.classModules, data.args, data.lazyRegistry)
  const target = await loadFunction(data.target)
  for (const module of missingModules(data.args)) await import(module)
  // Loaded: its supervisor may boot spares now, without slowing this process's start (supervisor-thread.ts).
  if (process.connected) process.send!(LOADED, () => {})
  await target(...(rebuildTree(data.args) as unknown[]))
} catch (error) {
  // Python prints the traceback under "Process <name>:" and exits with 1.
  printProcessError(data.name, error)
  process.exit(1)
}
await finishProcess()
process.exit(0)
