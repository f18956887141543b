// The module a pool's worker threads name as their target (pool-protocol.ts POOL_WORKER_TARGET):
// the loop itself is pool-loop.ts, which a worker thread has usually loaded with its first module.
// It also hands a first pool's threads their start (first-task.ts imports it for boot()): it has
// no top-level await (see process/boot.ts), and the bundle puts both in the chunk it imports.
export { poolWorker } from './pool-loop.js'
export { boot } from '../process/boot.js'
