// The module a pool's worker threads name as their target (pool-protocol.ts POOL_WORKER_TARGET):
// the loop itself is pool-loop.ts, which a worker thread has usually loaded with its first module.
export { poolWorker } from './pool-loop.js'
