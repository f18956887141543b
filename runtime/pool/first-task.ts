// The first module of the threads made ahead for a thread's first pool (process.ts threadsAhead):
// it runs the pool's first task if it is offered one and claims it (first-offer.ts), with
// nothing of the library loaded, then loads the library (process/boot.ts) and goes on as every pool
// thread does: it imports boot() from the module threadsAhead names, and runs it. It imports only
// what running that task takes (~5 KB); the bundle builds it on its own (build/bundle.mjs ALONE).
//
// What it cannot finish so is left to the library's loop (pool-loop.ts) in FIRST_TASK: the answer
// of a task that threw, or whose result the port does not carry as the library does; and a task
// whose module loaded the library, not run here: it runs once the library has set the thread up.

import { receiveMessageOnPort, threadId, workerData, type MessagePort } from 'node:worker_threads'
import { compileFunction, loadExport } from '../core/function-load.js'
import { LIBRARY_LOADED, PENDING_PROCESS } from '../core/loaded-mark.js'
import { runAsFirstModule } from '../core/first-module.js'
import { writeStdioDirectly } from '../core/stdio.js'
import { FIRST_TASK, crossesAlike, type FirstOffer, type FirstTaskLeft } from './first-offer.js'
import { CURRENT, DONE, EV } from './pool-words.js'
import { isThenable, runItems } from './run-items.js'
import { BOOTED, KILL_PENDING, LOAD, LOADED_WORD, LOADING, reportOwnEnd, type AheadData } from '../process/supervisor-protocol.js'

const { offers: port, boot: bootModule } = workerData as AheadData

runAsFirstModule(async () => {
  // The offer, if any, came while this thread booted: it is in the port by now, or was not made yet.
  const offer = port && (receiveMessageOnPort(port)?.message as FirstOffer | undefined)
  const ran = offer !== undefined && (await runFirst(offer, port!))
  if (!ran) port?.close()
  // Then the thread's start.
  const { boot } = (await import(bootModule!)) as { boot: (keepEnv: boolean) => Promise<void> }
  await boot(ran)
})

/** Runs the task offered if this thread wins it; whether it did. */
async function runFirst(o: FirstOffer, port: MessagePort): Promise<boolean> {
  const state = new Int32Array(o.state)
  const words = new Int32Array(o.words)
  // Its first module ran (process.ts neverBooted), whether or not it wins the task.
  Atomics.store(state, BOOTED, 1)
  Atomics.store(words, CURRENT, o.id)
  if (Atomics.compareExchange(new Int32Array(o.claim), 0, o.id, -o.n) !== o.id) {
    Atomics.store(words, CURRENT, 0)
    return false
  }
  const leave = (left: FirstTaskLeft): true => {
    ;(globalThis as { [FIRST_TASK]?: FirstTaskLeft })[FIRST_TASK] = left
    return true
  }
  // This thread's own imports are done: a terminate() now ends it at once, also while the task's
  // module loads, as a worker's later tasks' (supervisor-protocol.ts LOAD); one that came before
  // ends it here.
  if (Atomics.compareExchange(state, LOAD, LOADING, LOADED_WORD) === KILL_PENDING) process.exit()
  const unreport = reportOwnEnd(state, o.name)
  writeStdioDirectly()
  // The library, if the task's module loads it, starts as this worker (core/current.ts).
  ;(globalThis as { [PENDING_PROCESS]?: unknown })[PENDING_PROCESS] = { name: o.name, pid: threadId, daemon: true, identity: o.identity }
  const t0 = performance.now()
  let ok = true
  let value: unknown
  try {
    // The pool offers no function whose source calls a compiler helper (function-load.ts MAY_CALL_HELPER).
    const fn = 'source' in o.fn ? compileFunction(o.fn.source, '') : await loadExport(o.fn)
    if (LIBRARY_LOADED in globalThis) {
      // Its module loaded the library: the task runs once the library has set this thread up.
      Atomics.compareExchange(state, LOAD, LOADED_WORD, LOADING)
      unreport()
      return leave({ offer: o })
    }
    value = runItems(fn, o.mode, o.items)
    if (isThenable(value)) value = await value
  } catch (error) {
    ok = false
    value = error
  }
  const micros = (performance.now() - t0) * 1000
  // The library's imports come next, which a terminate() waits for again.
  Atomics.compareExchange(state, LOAD, LOADED_WORD, LOADING)
  unreport()
  try {
    if (ok && crossesAlike(value)) {
      port.postMessage([o.id, true, value, micros])
      Atomics.store(words, CURRENT, 0)
      Atomics.add(words, DONE, 1)
      const events = new Int32Array(o.events)
      Atomics.add(events, EV, 1)
      Atomics.notify(events, EV)
      return true
    }
  } catch {
    // A value the look or the clone choked on (a getter that throws, a Proxy): the library's
    // codec says what it says of it.
  }
  return leave({ offer: o, answer: [o.id, ok, value, micros] })
}
