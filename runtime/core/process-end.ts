// What a process's target leaves to finish before its thread or process ends, as Python's process
// does after run(): the queues it fed are flushed, then the sockets it wrote, the connections
// rebuilt from its arguments are closed, and its non-daemon children joined.
//
// Each step is registered by the module that has such work, when it loads: a thread's first
// module (bootstrap.ts, spawn-main.ts) imports none of them, so a pool worker that never touches
// a queue or starts a process does not load their code (a fresh thread compiles every byte it
// imports: the first pool of a process waits for it).

/** The steps in the order they run. */
export const FLUSH_QUEUES = 0
export const FLUSH_SOCKETS = 1
export const CLOSE_HANDLES = 2
export const JOIN_CHILDREN = 3

const steps: ((() => Promise<void> | void) | undefined)[] = []

/** Registers the step `at` (one of the constants above); a module registers each of its own once. */
export function atProcessEnd(at: number, step: () => Promise<void> | void): void {
  steps[at] = step
}

/** Runs the registered steps, in order. */
export async function finishProcess(): Promise<void> {
  for (const step of steps) await step?.()
}
