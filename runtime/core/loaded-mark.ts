// The mark the library's code leaves on a thread's globalThis when it loads there (current.ts
// sets it): a pool thread's first module (pool/first-task.ts), which runs a first task before
// it loads the library, leaves a task whose module loaded the library to the library's loop, which
// sets up the thread (its current_process(), its objects) before it runs it.
export const LIBRARY_LOADED = Symbol.for('aioprocessing.loaded')
