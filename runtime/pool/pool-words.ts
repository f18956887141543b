// The shared words of a pool and of each of its workers, apart from the rest of the wire
// (pool-protocol.ts) so that a pool thread's first module (first-task.ts) reads them
// without loading the codec.

// The pool's words (one buffer per pool, written by its workers and by the supervisor).
// word  name     meaning
// 0     EV       a counter the pool sleeps on: a worker bumps it when it has news for the pool,
//                the supervisor when a worker ends (ProcessOptions.exitNotify)
// 1     WAITING  1 while the pool is about to sleep or sleeping: a worker then announces each
//                result at once. The pool raises it, then looks for results once more; a worker
//                writes a result, then reads it. So either the worker sees it raised, or the pool
//                sees the result: none waits unannounced.
export const EV = 0
export const WAITING = 1
export const POOL_WORDS = 2

// A worker's words (one buffer per worker).
// word  name       meaning
// 0     CURRENT    id of the task the worker is running, 0 between tasks (a lost task is this one)
// 1     SENT       tasks the pool has sent to this worker (the pool adds)
// 2     DONE       tasks the worker has finished (the worker adds)
// 3     LOW_WATER  the worker bumps EV once SENT - DONE falls to this, so that it never starves
// 4     READY      1 once the worker has loaded and run its initializer (then it bumps EV): the
//                  pool sends tasks only to ready workers, so the first task of a new pool goes
//                  to whichever worker is up first, not to one still booting
export const CURRENT = 0
export const SENT = 1
export const DONE = 2
export const LOW_WATER = 3
export const READY = 4
export const WORKER_WORDS = 5
