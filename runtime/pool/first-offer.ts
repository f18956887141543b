// A fresh pool's first task, offered to its threads while they boot (dispatch.ts offerFirst):
// a thread's start (~25 ms here) and then the library's (~10 ms: ~100 KB of code, the pool's
// handshake) came before any task ran. The first of the pool's threads to boot claims it and
// runs it with nothing of the library loaded (first-task.ts), then loads the library and
// goes on as every worker does. Both ends import this module, and only what the thread needs.
//
// The offer goes to every thread made ahead for the pool, on a port of its own, and names the
// pool's CLAIM word. The word holds the task's id while it is offered; a thread claims it by
// swapping in -n (n its worker number), the pool withdraws it by swapping in 0 (a worker was up
// first, by the usual road): one of the two swaps wins. A claimed task is one of that worker's
// tasks in flight like any other: the thread stores its id in its CURRENT word before it claims,
// so that its end fails exactly that task (worker-slots.ts).
//
// Arguments and the result cross by the structured clone of the port, not the library's codec.
// Only values that both carry alike (crossesAlike) go so: others, and a task that throws, wait
// for the library, which sends the answer by the usual road.

import type { FunctionRef } from '../core/function-load.js'
import type { TaskMode } from './run-items.js'

export interface FirstOffer {
  id: number
  fnId: number
  fn: FunctionRef
  mode: TaskMode
  items: unknown[]
  /** The worker's number (WorkerSlot.n), and its process's name and identity (its current_process()). */
  n: number
  name: string
  identity: number[]
  /** The pool's claim word (one Int32), its EV word's buffer, the worker's words and its process's state words. */
  claim: SharedArrayBuffer
  events: SharedArrayBuffer
  words: SharedArrayBuffer
  state: SharedArrayBuffer
}

/**
 * What the thread left of its first task for the library's loop (pool-loop.ts), on globalThis (the
 * two do not share a module): the answer to send ([id, ok, value or what it threw, µs]), or none
 * when the task is still to run.
 */
export const FIRST_TASK = Symbol.for('aioprocessing.firstTask')
export interface FirstTaskLeft {
  offer: FirstOffer
  answer?: [id: number, ok: boolean, value: unknown, micros: number]
}

/** Past this many values, a value is not looked through: it goes by the usual road. */
const ALIKE_BUDGET = 10_000

const { isProxy } = process.getBuiltinModule('node:util').types

/**
 * Whether the structured clone of `value` is what the library's codec (ipc/serialize.ts) would
 * give: primitives (not a string with a lone surrogate, which UTF-8 cannot carry), and plain
 * arrays (dense, no other keys) and plain objects of those, each object once (the clone keeps one
 * object met twice one, the codec makes two copies), with no getter (the clone would run it
 * again after this look, the codec once) and no Proxy.
 */
export function crossesAlike(value: unknown): boolean {
  const stack = [value]
  const seen = new Set<object>()
  let budget = ALIKE_BUDGET
  while (stack.length > 0) {
    if (--budget < 0) return false
    const v = stack.pop()
    switch (typeof v) {
      case 'number':
      case 'boolean':
      case 'undefined':
      case 'bigint':
        continue
      case 'string':
        if (!v.isWellFormed()) return false
        continue
      case 'object':
        break
      default:
        return false // a function, a symbol
    }
    if (v === null) continue
    if (seen.has(v) || isProxy(v)) return false
    seen.add(v)
    const proto = Object.getPrototypeOf(v)
    const array = proto === Array.prototype && Array.isArray(v)
    if (!array && proto !== Object.prototype && proto !== null) return false
    if (Object.getOwnPropertySymbols(v).length > 0) return false
    const keys = Object.keys(v)
    // An array's keys are its indexes, in order, and nothing else: no holes, no keys of its own.
    if (array && keys.length !== (v as unknown[]).length) return false
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]
      if (array ? k !== String(i) : k === '__proto__' || !k.isWellFormed()) return false
      const d = Object.getOwnPropertyDescriptor(v, k)
      if (d === undefined || !('value' in d)) return false
      stack.push(d.value)
    }
  }
  return true
}
