// The loop of one AioPool worker (see pool.ts): a process target that takes tasks from its pipe,
// runs them one at a time, and writes each result back the moment it has it. It knows the pool
// only through the wire (pool-protocol.ts).
//
// Its module, pool-worker.ts, only names it. The bundle puts this code in the chunk every thread's
// first module imports (build/bundle.mjs THREAD_CORE), where it registers itself as loaded: a
// pool's worker thread then runs it with no import of a module of its own.
//
// The pool sleeps on one word for all its workers; a worker bumps it only when the pool needs
// to hear: when its queue of sent-ahead tasks runs low (so it never starves), when it is about
// to sleep, and when a result has waited 50 µs unannounced (so a slow task's result is not
// held back by the next one). Trivial tasks thus cost no wake-up each.

import { ConnectionCore, SendState } from '../ipc/connection.js'
import { EOF, GetState, Ring } from '../ipc/ring.js'
import { PENDING, blockOn, coroBlockOn } from '../core/wait.js'
import { decode, encoded } from '../ipc/serialize.js'
import { CURRENT, DONE, EV, INIT_FAILED, LOW_WATER, OP_DEFINE, OP_STOP, OP_TASK, POOL_WORKER_TARGET, READY, SENT, WAITING, splitBatch, type ResultMessage, type SharedMessage, type ToWorker, type WorkerArgs } from './pool-protocol.js'
import { errorRecord } from '../core/remote-error.js'
import { loadClassModules } from '../core/transfer.js'
import { TaskRunner, encodeResult, runInitializer } from './run-task.js'
import { registerLoadedFunction } from '../core/source.js'
import { FIRST_TASK, type FirstTaskLeft } from './first-offer.js'

/** How long a result may wait before the pool is told of it, in ms, while the pool is busy (not WAITING). */
const ANNOUNCE_MS = 0.05

export async function poolWorker(a: WorkerArgs): Promise<void> {
  const conn = new ConnectionCore(new Ring(new Int32Array(a.rx)), new Ring(new Int32Array(a.tx)), true)
  const words = new Int32Array(a.words)
  const events = new Int32Array(a.events)
  const runner = new TaskRunner()
  let lastAnnounce = performance.now()
  let unannounced = false
  const announce = (): void => {
    unannounced = false
    lastAnnounce = performance.now()
    Atomics.add(events, EV, 1)
    Atomics.notify(events, EV)
  }
  const send = (msg: ResultMessage): void => {
    const n = encodeResult(msg)
    const st = new SendState(conn.tx!.i32, encoded().subarray(0, n))
    if (conn.sendAttempt(st) === PENDING) {
      // The pipe is full: the pool must read before this worker can go on. A result larger than
      // the pipe goes in part by part, and the pool hears of each part (it sleeps on EV, not on
      // the pipe's words).
      announce()
      blockOn(st, () => {
        const r = conn.sendAttempt(st)
        announce()
        return r
      }, Infinity, () => undefined, true)
    }
  }

  const initError = await runInitializer(a)
  if (initError) {
    // The pool counts these and stops starting workers after a few in a row (dispatch.ts).
    send([INIT_FAILED, false, initError, 0])
    return
  }
  // The pool's first task, taken before this thread loaded the library (first-task.ts):
  // its answer, which the port could not carry, goes first by the usual road; or it runs now.
  const first = (globalThis as { [FIRST_TASK]?: FirstTaskLeft })[FIRST_TASK]
  if (first) {
    delete (globalThis as { [FIRST_TASK]?: FirstTaskLeft })[FIRST_TASK]
    const { offer: o, answer } = first
    let result: ResultMessage
    if (answer) result = answer[1] ? [o.id, true, answer[2], answer[3]] : [o.id, false, errorRecord(answer[2]), answer[3]]
    else {
      await runner.handle([OP_DEFINE, o.fnId, o.fn])
      result = (await runner.handle([OP_TASK, o.id, o.fnId, o.mode, o.items])) as ResultMessage
    }
    if (finish(result)) return void (unannounced && announce())
  }
  Atomics.store(words, READY, 1)
  announce()

  // A record from the pool is a batch (pool-protocol.ts); a message kept as bytes carries shared
  // objects and is decoded once the library's classes are loaded.
  const rx = conn.rx!
  const recv = new GetState(rx.i32)
  const take = (): (ToWorker | SharedMessage)[] | typeof PENDING => {
    const r = rx.takeAttempt(recv, splitBatch)
    return r === EOF ? [[OP_STOP]] : r
  }
  let tasks = 0
  for (;;) {
    let batch = take()
    if (batch === PENDING) {
      if (unannounced) announce()
      batch = await coroBlockOn(recv, take, Infinity, () => undefined as never, undefined, true)
    }
    for (const m of batch) {
      let message: ToWorker
      if (Array.isArray(m)) message = m
      else {
        try {
          await loadClassModules()
          message = decode(m.bytes) as ToWorker
        } catch (error) {
          // Its shared objects cannot be rebuilt here: the task fails with the reason; the worker goes on.
          if (finish([m.taskId, false, errorRecord(error), 0])) return void (unannounced && announce())
          continue
        }
      }
      const result = await runner.handle(message, (id) => Atomics.store(words, CURRENT, id))
      if (result === 'stop' || (result && finish(result))) return void (unannounced && announce())
    }
  }

  /** Sends a task's answer and counts it done; true when the worker is to end (maxtasksperchild). */
  function finish(result: ResultMessage): boolean {
    send(result)
    Atomics.store(words, CURRENT, 0)
    const done = Atomics.add(words, DONE, 1) + 1
    unannounced = true
    if (Atomics.load(events, WAITING) === 1 || Atomics.load(words, SENT) - done <= Atomics.load(words, LOW_WATER) || performance.now() - lastAnnounce >= ANNOUNCE_MS) announce()
    return a.maxtasks > 0 && ++tasks >= a.maxtasks
  }
}

registerLoadedFunction(POOL_WORKER_TARGET.module, POOL_WORKER_TARGET.name, poolWorker)
