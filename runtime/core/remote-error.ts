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
  /** The class, when its name is not the error's (Python's KeyError is a RangeError named KeyError). */
  base?: string
  /** Set when what was thrown was not an Error: the value itself. */
  thrown?: unknown
  isError: boolean
}

/** The record of a thrown value; own fields that are plain values (an error's `code`) travel too. */
export function errorRecord(e: unknown): ErrorRecord {
  // Every part is read with care: a getter that throws (a message, a stack, a Proxy) must not turn
  // a task's error into the death of its worker.
  if (!safely(() => e instanceof Error, false)) return { name: 'Error', message: safely(() => String(e), '(a value that cannot be made a string)'), thrown: e, isError: false }
  const err = e as Error
  const props: Record<string, unknown> = {}
  for (const k of safely(() => Object.keys(err), [] as string[])) {
    const v = safely(() => (err as unknown as Record<string, unknown>)[k], undefined)
    if (k !== 'cause' && (v === null || ['string', 'number', 'boolean'].includes(typeof v))) props[k] = v
  }
  const text = (read: () => unknown, otherwise: string): string => {
    const v = safely(read, otherwise)
    return typeof v === 'string' ? v : otherwise
  }
  const name = text(() => err.name, 'Error')
  const stack = safely(() => err.stack, undefined)
  const base = safely(() => (err.constructor as { name?: unknown } | undefined)?.name, undefined)
  return { name, message: text(() => err.message, '(its message could not be read)'), stack: typeof stack === 'string' ? stack : undefined, props, isError: true, ...(typeof base === 'string' && base !== name ? { base } : {}) }
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

/** Turns a record back into an error of the same class, with the remote stack first. */
export function rebuildError(r: ErrorRecord, where: string): unknown {
  if (!r.isError) return r.thrown
  const classOf = (name: string | undefined): (new (message: string, options?: ErrorOptions) => Error) | undefined => {
    if (name === undefined) return undefined
    const known = (errors as Record<string, unknown>)[name] ?? (globalThis as Record<string, unknown>)[name]
    return typeof known === 'function' && (known === Error || (known as { prototype: unknown }).prototype instanceof Error) ? (known as new (message: string, options?: ErrorOptions) => Error) : undefined
  }
  const cls = classOf(r.name) ?? classOf(r.base) ?? Error
  const error = new cls(r.message, { cause: new RemoteTraceback(r.stack ?? '', where) })
  if (error.name !== r.name) error.name = r.name
  if (r.props) Object.assign(error, r.props)
  // The stack that matters is where it was thrown: the remote one, then where it was re-thrown.
  error.stack = `${r.stack ?? `${r.name}: ${r.message}`}\n    --- re-thrown from ${where} ---${(error.stack ?? '').replace(/^[^\n]*/, '')}`
  return error
}
