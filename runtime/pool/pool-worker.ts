// The loop of one AioPool worker (see pool.ts): a process target that takes tasks from its pipe,
// runs them one at a time, and writes each result back the moment it has it. It knows the pool
// only through the wire (pool-protocol.ts).
//
// The pool sleeps on one word for all its workers; a worker bumps it only when the pool needs
// to hear: when its queue of sent-ahead tasks runs low (so it never starves), when it is about
// to sleep, and when a result has waited 50 µs unannounced (so a slow task's result is not
// held back by the next one). Trivial tasks thus cost no wake-up each.

import { ConnectionCore, SendState } from '../ipc/connection.js'
import { EOF, GetState, Ring } from '../ipc/queue.js'
import { PENDING, blockOn, coroBlockOn } from '../core/wait.js'
import { decode, encode, encoded } from '../ipc/serialize.js'
import { loadFunction } from '../core/source.js'
import { CURRENT, DONE, EV, INIT_FAILED, LOW_WATER, MODE_APPLY, MODE_STARMAP, OP_DEFINE, OP_STOP, OP_TASK, SENT, WAITING, splitBatch, type ResultMessage, type SharedMessage, type ToWorker, type WorkerArgs } from './pool-protocol.js'
import { errorRecord, type ErrorRecord } from '../core/remote-error.js'
import { describeValue } from '../core/args.js'
import { loadClassModules } from '../core/transfer.js'

type Fn = (...args: unknown[]) => unknown

/** How long a result may wait before the pool is told of it, in ms, while the pool is busy (not WAITING). */
const ANNOUNCE_MS = 0.05

export async function poolWorker(a: WorkerArgs): Promise<void> {
  const conn = new ConnectionCore(new Ring(new Int32Array(a.rx)), new Ring(new Int32Array(a.tx)), true)
  const words = new Int32Array(a.words)
  const events = new Int32Array(a.events)
  const fns = new Map<number, Fn | { error: unknown }>()
  let lastAnnounce = performance.now()
  let unannounced = false
  const announce = (): void => {
    unannounced = false
    lastAnnounce = performance.now()
    Atomics.add(events, EV, 1)
    Atomics.notify(events, EV)
  }
  const send = (msg: ResultMessage): void => {
    const n = encode(msg, 'result')
    const st = new SendState(conn.tx!.i32, encoded().subarray(0, n))
    if (conn.sendAttempt(st) === PENDING) {
      // The pipe is full: the pool must read before this worker can go on.
      announce()
      blockOn(st, () => conn.sendAttempt(st), Infinity, () => undefined, true)
    }
  }

  if (a.initializer) {
    try {
      const init = await loadFunction(a.initializer)
      await init(...a.initargs)
    } catch (error) {
      // The pool counts these and stops starting workers after a few in a row (dispatch.ts).
      send([INIT_FAILED, false, errorRecord(error), 0])
      return
    }
  }

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
          if (finish(m.taskId, false, errorRecord(error), 0)) return void (unannounced && announce())
          continue
        }
      }
      if (await handle(message)) return void (unannounced && announce())
    }
  }

  /** Sends a task's answer and counts it done; true when the worker is to end (maxtasksperchild). */
  function finish(id: number, ok: boolean, value: unknown, micros: number): boolean {
    try {
      send(ok ? [id, true, value, micros] : [id, false, value as ErrorRecord, micros])
    } catch (error) {
      // Python's MaybeEncodingError: the result cannot be sent; the task fails, the worker goes on.
      const reason = error instanceof Error ? error.message : String(error)
      send([id, false, { name: 'MaybeEncodingError', message: `Error sending result: '${describeValue(value)}'. Reason: '${reason}'`, isError: true }, micros])
    }
    Atomics.store(words, CURRENT, 0)
    const done = Atomics.add(words, DONE, 1) + 1
    unannounced = true
    if (Atomics.load(events, WAITING) === 1 || Atomics.load(words, SENT) - done <= Atomics.load(words, LOW_WATER) || performance.now() - lastAnnounce >= ANNOUNCE_MS) announce()
    return a.maxtasks > 0 && ++tasks >= a.maxtasks
  }

  /** Runs one message; true when the worker is to end. */
  async function handle(m: ToWorker): Promise<boolean> {
    if (m[0] === OP_STOP) return true
    if (m[0] === OP_DEFINE) {
      const [, id, ref] = m
      try {
        fns.set(id, await loadFunction(ref))
      } catch (error) {
        fns.set(id, { error })
      }
      return false
    }
    if (m[0] !== OP_TASK) throw new Error(`aioprocessing: pool protocol error: unknown message to a worker: ${JSON.stringify(m)}`)
    const [, id, fnId, mode, items] = m
    Atomics.store(words, CURRENT, id)
    const t0 = performance.now()
    let ok = true
    let value: unknown
    try {
      const fn = fns.get(fnId)!
      if (typeof fn !== 'function') throw fn.error
      if (mode === MODE_APPLY) {
        value = fn(...(items[0] as unknown[]))
        if (isThenable(value)) value = await value
      } else {
        const out = new Array(items.length)
        for (let i = 0; i < items.length; i++) {
          let v = mode === MODE_STARMAP ? fn(...(items[i] as unknown[])) : fn(items[i])
          if (isThenable(v)) v = await v
          out[i] = v
        }
        value = out
      }
    } catch (error) {
      ok = false
      value = errorRecord(error)
    }
    return finish(id, ok, value, (performance.now() - t0) * 1000)
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function'
}
