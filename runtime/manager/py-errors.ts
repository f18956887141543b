// The library's errors and Python's exceptions, one table for both directions: a Node manager
// raises Python's own on a Python client's side (py-server.ts), and a Python manager's arrive as the
// library's on a Node client's (py-client.ts).

import * as errors from '../core/errors.js'
import { PyObject } from '../ipc/pickle.js'

/** [the library's (or JavaScript's) error name, Python's module, Python's class, whether the message goes as its argument]. */
const TABLE: readonly (readonly [string, string, string, boolean])[] = [
  ['Empty', '_queue', 'Empty', false],
  ['Full', 'queue', 'Full', false],
  ['BrokenBarrierError', 'threading', 'BrokenBarrierError', false],
  ['ValueError', 'builtins', 'ValueError', true],
  ['TypeError', 'builtins', 'TypeError', true],
  ['RuntimeError', 'builtins', 'RuntimeError', true],
  ['KeyError', 'builtins', 'KeyError', true],
  ['IndexError', 'builtins', 'IndexError', true],
  // A method a proxy does not expose: Python's proxies raise AttributeError for it.
  ['NotImplementedError', 'builtins', 'AttributeError', true],
]
const TO_PYTHON = new Map(TABLE.map((row) => [row[0], row]))
/** The class of an error name: the library's, or JavaScript's own; undefined for a name only (KeyError). */
const classOf = (name: string): (new (m?: string) => Error) | undefined => ((errors as Record<string, unknown>)[name] ?? (globalThis as Record<string, unknown>)[name]) as (new (m?: string) => Error) | undefined
/** Python's classes that come back as a class here (`queue.Empty` too, its old module); others as RemoteError. */
const FROM_PYTHON = new Map([...TABLE.filter(([lib, , name]) => lib === name && classOf(lib)).map((row) => [`${row[1]}.${row[2]}`, row] as const), ['queue.Empty', TABLE[0]] as const])

/** The Python exception for an error thrown on a Node manager (RuntimeError naming it when none matches). */
export function toPython(error: unknown): PyObject {
  if (error instanceof PyObject) return error
  const e = error as Error
  const message = e?.message ?? String(error)
  const row = TO_PYTHON.get(e?.name)
  if (!row) return new PyObject('builtins', 'RuntimeError', [`${e?.name ?? 'Error'}: ${message}`])
  return new PyObject(row[1], row[2], row[3] ? [message] : [])
}

/** The library's error for a Python exception that has one (Empty, Full, BrokenBarrierError, ValueError, TypeError...); undefined otherwise. */
export function fromPythonClass(e: PyObject): Error | undefined {
  const row = FROM_PYTHON.get(`${e.module}.${e.name}`)
  if (!row) return undefined
  const text = row[3] && e.args.length ? String(e.args[0]) : undefined
  return new (classOf(row[0])!)(text)
}
