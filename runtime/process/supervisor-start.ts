// The supervisor thread's first module (see start-process.ts): it starts the processes asked for
// while the supervisor's own code loads (with no top-level await: core/first-module.ts).
import { parentPort, workerData } from 'node:worker_threads'
import { holdMessages } from './start-process.js'
import type { SupervisorData } from './supervisor-protocol.js'
import { runAsFirstModule } from '../core/first-module.js'

holdMessages(parentPort!)
const up = new Int32Array((workerData as SupervisorData).up)
Atomics.store(up, 0, 1)
runAsFirstModule(async () => {
  // For the tests: what a slow load would do, the processes' own events coming before the supervisor's code.
  const holdMs = Number(process.env.AIOPROCESSING_TEST_SUPERVISOR_HOLD_MS)
  if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs))
  // Not a literal: the bundle loads the supervisor's entry, where a literal would make it a chunk.
  try {
    await import(new URL('./supervisor-thread.js', import.meta.url).href)
    Atomics.store(up, 0, 2)
  } catch (error) {
    // Its code could not load (EMFILE): its starter, which may be blocked, learns it here too.
    Atomics.store(up, 0, -1)
    throw error
  }
})
