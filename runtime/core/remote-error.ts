// Errors that cross back from another thread or process (a pool task, a manager call): the
// record that travels, and the error rebuilt from it with the same class and message, the stack
// of where it was thrown, and Python's RemoteTraceback as its cause.

import * as errors from './errors.js'

/** How an error crosses back: enough to rebuild its class, message, stack and own fields. */
export interface ErrorRecord {
  name: string
  message: string
  stack?: string
  props?: Record<string, unknown>
  /**
   * Its class, when that is not named as the error is (a DOMException named DataCloneError): the
   * library's or a global one, or for a class of the thrower's own, the nearest such class it
   * extends (a user's HttpError extends TypeError: 'TypeError'), which the other side has too.
   */
  base?: string
  /** Set when what was thrown was not an Error: the value itself. */
  thrown?: unknown
  /** An AggregateError's errors, each a record of its own. */
  errors?: ErrorRecord[]
  isError: boolean
}

/** How deep an AggregateError's errors are recorded (an error in its own list must end somewhere). */
const ERRORS_DEPTH = 4
/** How many errors one record holds at most, its AggregateErrors' included (one that lists itself 40 times made 40^4). */
const ERRORS_MAX = 100
/** How deep, and how large, an error's field may be to travel: a field is a detail, not a payload. */
const FIELD_DEPTH = 64
const FIELD_NODES = 10_000
/** The longest string field a plain record keeps (plainRecord). */
const PLAIN_STRING_MAX = 64 * 1024
/** Fields an error's record carries apart from its other own fields. */
const OWN = new Set(['cause', 'stack', 'message', 'name'])

/**
 * The record of a thrown value. Its own fields travel too, as Python pickles an exception's
 * `__dict__`: plain values (an error's `code`) and trees that can be cloned (`{ status, body }`);
 * one that cannot (a function, a socket, a value that holds itself) is left out rather than fail
 * the whole answer.
 */
export function errorRecord(e: unknown, budget = { errors: ERRORS_MAX }, path: unknown[] = []): ErrorRecord {
  // Every part is read with care: a getter that throws (a message, a stack, a Proxy) must not turn
  // a task's error into the death of its worker.
  if (!safely(() => e instanceof Error, false)) return { name: 'Error', message: safely(() => String(e), '(a value that cannot be made a string)'), thrown: e, isError: false }
  const err = e as Error
  const props: Record<string, unknown> = {}
  const aggregate = safely(() => err instanceof AggregateError && Array.isArray(err.errors), false)
  for (const k of safely(() => Object.keys(err), [] as string[])) {
    if (OWN.has(k) || (aggregate && k === 'errors')) continue
    const v = safely(() => (err as unknown as Record<string, unknown>)[k], undefined)
    if (plain(v) || typeof v === 'bigint' || (typeof v === 'object' && v !== null && travels(v))) props[k] = v
  }
  // An AggregateError's errors, each once per path (one that lists itself is left out there), to a depth and a count.
  let errors: ErrorRecord[] | undefined
  if (aggregate && path.length < ERRORS_DEPTH) {
    const inner = [...path, e]
    errors = []
    for (const x of safely(() => [...(err as AggregateError).errors], [] as unknown[])) {
      if (inner.includes(x) || budget.errors <= 0) continue
      budget.errors--
      errors.push(errorRecord(x, budget, inner))
    }
  }
  const text = (read: () => unknown, otherwise: string): string => {
    const v = safely(read, otherwise)
    return typeof v === 'string' ? v : otherwise
  }
  const name = text(() => err.name, 'Error')
  const stack = safely(() => err.stack, undefined)
  const base = safely(() => knownClass(err), undefined)
  return { name, message: text(() => err.message, '(its message could not be read)'), stack: typeof stack === 'string' ? stack : undefined, props, isError: true, ...(typeof base === 'string' && base !== name ? { base } : {}), ...(errors ? { errors } : {}) }
}

/** The name of the nearest class of `err` that is the library's or a global (see ErrorRecord.base). */
function knownClass(err: Error): string | undefined {
  for (let p = Object.getPrototypeOf(err), depth = 0; p !== null && depth < 64; p = Object.getPrototypeOf(p), depth++) {
    const c: unknown = Object.getOwnPropertyDescriptor(p, 'constructor')?.value
    const name = typeof c === 'function' ? c.name : undefined
    if (name && ((errors as Record<string, unknown>)[name] === c || (globalThis as Record<string, unknown>)[name] === c)) return name
  }
  return undefined
}

/**
 * The record with only its fields that are plain values and short strings, its errors' too: what
 * goes when the record as it was cannot be sent (a field the transport refuses after all, or one
 * so large that the answer is over a frame's limit).
 */
export function plainRecord(r: ErrorRecord): ErrorRecord {
  const props = Object.fromEntries(Object.entries(r.props ?? {}).filter(([, v]) => plain(v) && !(typeof v === 'string' && v.length > PLAIN_STRING_MAX)))
  return { ...r, props, ...(r.errors ? { errors: r.errors.map(plainRecord) } : {}) }
}

/** A field that travels as it is: null, a string, a number, a boolean. */
function plain(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

/**
 * Whether a field's value can travel: a tree (the transports copy trees: no value that holds
 * itself) of modest depth and size that structured clone, which both transports can carry at
 * least, accepts.
 */
function travels(v: object): boolean {
  let nodes = 0
  const tree = (x: unknown, ancestors: object[]): boolean => {
    if (x === null || typeof x !== 'object') return true
    if (++nodes > FIELD_NODES || ancestors.length >= FIELD_DEPTH || ancestors.includes(x)) return false
    const inner = [...ancestors, x]
    const parts = x instanceof Map ? [...x.keys(), ...x.values()] : x instanceof Set ? [...x] : Array.isArray(x) ? x : ArrayBuffer.isView(x) ? [] : Object.values(x)
    return parts.every((p) => tree(p, inner))
  }
  return safely(() => tree(v, []) && (structuredClone(v), true), false)
}

function safely<T>(read: () => T, otherwise: T): T {
  try {
    return read()
  } catch {
    return otherwise
  }
}

/** Python's `multiprocessing.pool.RemoteTraceback`: the `cause` of an error re-thrown from elsewhere. */
export class RemoteTraceback extends Error {
  constructor(readonly tb: string, where: string) {
    super(`the error was thrown in ${where}:\n${tb}`)
    this.name = 'RemoteTraceback'
  }
}

type ErrorClass = new (...args: any[]) => Error

/** Turns a record back into an error of the same class, with the remote stack first; never throws. */
export function rebuildError(r: ErrorRecord, where: string): unknown {
  if (!r.isError) return r.thrown
  const classOf = (name: string | undefined, where: object): ErrorClass | undefined => {
    if (name === undefined) return undefined
    const known = (where as Record<string, unknown>)[name]
    return typeof known === 'function' && (known === Error || (known as { prototype: unknown }).prototype instanceof Error) ? (known as ErrorClass) : undefined
  }
  // The library's class of that name (a KeyError, which is a RangeError named so), else the class
  // it was made by, or the nearest the other side knows of a class of its own (a DOMException
  // named DataCloneError; an Error renamed 'DOMException' stays an Error; a user's HttpError that
  // extends TypeError is a TypeError here), else the global class of its name.
  const cls = classOf(r.name, errors) ?? classOf(r.base, errors) ?? classOf(r.base, globalThis) ?? classOf(r.name, globalThis) ?? Error
  const cause = new RemoteTraceback(r.stack ?? '', where)
  const error = safely(() => construct(cls, r, cause, where), undefined) ?? new Error(r.message, { cause })
  if (error.cause !== cause) own(error, 'cause', cause)
  // A class's name may be a getter (DOMException's): an own field says the record's.
  if (error.name !== r.name) own(error, 'name', r.name)
  for (const [k, v] of Object.entries(r.props ?? {})) own(error, k, v)
  // The stack that matters is where it was thrown: the remote one, then where it was re-thrown.
  const here = safely(() => error.stack, undefined)
  own(error, 'stack', `${r.stack ?? `${r.name}: ${r.message}`}\n    --- re-thrown from ${where} ---${(typeof here === 'string' ? here : '').replace(/^[^\n]*/, '')}`)
  return error
}

/** An error of class `cls` for record `r`: the classes whose constructors take other arguments than (message, options) get theirs. */
function construct(cls: ErrorClass, r: ErrorRecord, cause: RemoteTraceback, where: string): Error {
  if (cls === AggregateError) return new AggregateError((r.errors ?? []).map((e) => rebuildError(e, where)), r.message, { cause })
  // (message, name): its name sets its code, as where it was thrown.
  if (typeof DOMException === 'function' && cls === (DOMException as unknown)) return new DOMException(r.message, r.name)
  return new cls(r.message, { cause })
}

/** Sets `error[key]`, as an own field where assigning is refused (a getter only, a frozen field). */
function own(error: Error, key: string, value: unknown): void {
  try {
    ;(error as unknown as Record<string, unknown>)[key] = value
    if ((error as unknown as Record<string, unknown>)[key] === value) return
  } catch {
    // defined below
  }
  safely(() => Object.defineProperty(error, key, { value, writable: true, configurable: true, enumerable: key !== 'stack' && key !== 'name' && key !== 'cause' }), undefined)
}
