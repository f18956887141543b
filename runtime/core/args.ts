// Argument checks shared by every generated method: each error names the argument, so a wrong
// call fails at once with a message that says what to pass instead.
import { debuglog } from 'node:util'

/** A timeout in milliseconds; `null`/`undefined` waits forever. */
export type Timeout = number | null | undefined

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN'
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`
  return `${typeof value} ${String(value)}`
}

/**
 * The `{ signal }` of a coro_ call: absent, or an AbortSignal, whose reason is thrown at once if it
 * has fired already (what `signal?.throwIfAborted()` does, with a clear error for anything else).
 */
export function checkSignal(signal: unknown): void {
  if (signal === undefined || signal === null) return
  if (!(signal instanceof AbortSignal)) throw new TypeError(`signal must be an AbortSignal, not ${describe(signal)}`)
  signal.throwIfAborted()
}

/**
 * Turns a timeout into an absolute deadline on `performance.now()`'s clock.
 * `null`/`undefined` → Infinity; a negative timeout acts as 0 (one try), as in Python.
 */
export function deadlineOf(name: string, timeoutMs: Timeout): number {
  if (timeoutMs === null || timeoutMs === undefined) return Infinity
  checkTimeout(name, timeoutMs)
  if (timeoutMs <= 0) return 0
  return performance.now() + timeoutMs
}

/** Validates a timeout without reading the clock (the fast path of an acquire never needs it). */
export function checkTimeout(name: string, timeoutMs: unknown): void {
  if (timeoutMs === null || timeoutMs === undefined) return
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) {
    throw new TypeError(`${name} must be a number of milliseconds, null or undefined, not ${describe(timeoutMs)}`)
  }
  if (debug.enabled && timeoutMs > 0 && timeoutMs < 10 && !Number.isInteger(timeoutMs)) noteSeconds(name, timeoutMs)
}

// NODE_DEBUG=aioprocessing: a timeout like 0.5 is likely Python's seconds (here it is 0.5 ms).
const debug = debuglog('aioprocessing')
const notedTimeouts = new Set<number>()

function noteSeconds(name: string, timeoutMs: number): void {
  if (notedTimeouts.has(timeoutMs)) return
  notedTimeouts.add(timeoutMs)
  debug(`${name} ${timeoutMs} is ${timeoutMs} milliseconds: timeouts here are milliseconds, where Python's are seconds; for ${timeoutMs} s pass ${timeoutMs * 1000}`)
}

export function checkNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${name} must be a number, not ${describe(value)}`)
  return value
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, not ${describe(value)}`)
  return value
}

export function checkInteger(name: string, value: unknown, min = -Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, not ${describe(value)}`)
  }
  if (value < min) throw new RangeError(`${name} must be >= ${min}, not ${value}`)
  return value
}

export function checkFunction(name: string, value: unknown): (...args: any[]) => unknown {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function, not ${describe(value)}`)
  return value as (...args: any[]) => unknown
}

export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, not ${describe(value)}`)
  return value
}

export { describe as describeValue }
