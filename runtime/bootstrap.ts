// First code in a process worker: registers the shareable types, rebuilds the args into working
// objects over the parent's shared memory, then runs the target.
import { workerData } from 'node:worker_threads'
import { writeAllSync } from './stdio.js'
import type { ProcessData } from './process.js'
import { setCurrentProcess } from './current.js'
import { missingModules, rebuildTree } from './transfer.js'
import { loadFunction } from './source.js'
import { joinChildren } from './process.js'
import { installLivenessTable } from './liveness.js'
import { installFeederPort } from './feeder-client.js'
import { flushFedQueues } from './queue.js'
import { closeRebuiltHandles, flushSockets } from './connection.js'
import { parentPort, threadId } from 'node:worker_threads'

// The library's classes, so that shared objects arriving later (in queue items) can be rebuilt.
const registry = import('../generated/index.generated.js')
registry.catch(() => {}) // awaited below; a failure is thrown there

// A child writes straight to the inherited stdout/stderr, as a Python child does: through the
// parent's streams its output would wait for the parent's event loop, and come after whatever the
// parent prints once a blocking join() returns.
for (const [stream, fd] of [[process.stdout, 1], [process.stderr, 2]] as const) {
  stream.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error) => void), cb?: (e?: Error) => void) => {
    writeAllSync(fd, typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : chunk)
    ;(typeof encoding === 'function' ? encoding : cb)?.()
    return true
  }) as typeof stream.write
}

// A spare (see supervisor-thread.ts) has loaded everything above and waits for its process.
if (workerData?.spare) await registry
const data: ProcessData = workerData?.spare ? await new Promise((resolve) => parentPort!.once('message', resolve)) : workerData
if (!data.lazyRegistry) await registry
if (data.liveness) installLivenessTable(data.liveness)
if (data.feeder) installFeederPort(data.feeder)
setCurrentProcess({ name: data.name, pid: threadId, daemon: data.daemon, identity: data.identity })

const target = await loadFunction(data.target)
// Shared objects of classes this thread has not loaded (a user's own primitives) bring their module.
for (const module of missingModules(data.args)) await import(module)
await target(...(rebuildTree(data.args) as unknown[]))
await flushFedQueues()
await flushSockets()
closeRebuiltHandles()
await joinChildren()
// Python ends a process when run() returns (os._exit), whatever timers or handles are left.
process.exit(0)
