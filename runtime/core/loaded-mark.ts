// Marks on a thread's globalThis between the library and a pool thread's first module
// (pool/first-task.ts), which runs a first task before it loads the library and shares no module
// with it.

/**
 * Set by the library's code when it loads in a thread (current.ts): the first module leaves a
 * task whose module loaded the library to the library's loop, which sets up the thread (its
 * feeder, broker, liveness table) before it runs it.
 */
export const LIBRARY_LOADED = Symbol.for('aioprocessing.loaded')

/**
 * The process a thread is, set by the first module before it imports a first task's module: the
 * library, if that module loads it, starts with it as its current_process() (current.ts), not as
 * `Thread-<id>`; the thread's start (process/boot.ts) sets it again.
 */
export const PENDING_PROCESS = Symbol.for('aioprocessing.pendingProcess')
