// The module a spawn-context pool's worker processes name as their target (pool-protocol.ts
// POOL_PROCESS_WORKER_TARGET): the loop itself is pool-process-loop.ts, which a worker process has
// usually loaded with its first module.
export { poolProcessWorker } from './pool-process-loop.js'
