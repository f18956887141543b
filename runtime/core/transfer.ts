// Transfer is an explicit step. A shareable object reduces to a tagged, structured-cloneable
// record holding its SharedArrayBuffer(s); the receiving thread rebuilds a working object over
// the same memory. Tags are checked on rebuild, and anything that cannot cross a thread boundary
// is refused at once with the path of the offending value.

import { describeValue } from './args.js'

/** Implemented by every shareable object: its cloneable record. */
export const REDUCE: unique symbol = Symbol.for('aioprocessing.reduce')

/** The runtime core behind a public object (generated classes expose it under this key). */
export const CORE: unique symbol = Symbol.for('aioprocessing.core')

/** The core of `value` if it is an instance of one of `classes`, else a TypeError naming `name`. */
export function coreOf<C>(name: string, value: unknown, classes: readonly (abstract new (...a: any[]) => C)[], expected: string): C {
  const core = value !== null && typeof value === 'object' ? (value as { [CORE]?: unknown })[CORE] : undefined
  if (classes.some((c) => core instanceof c)) return core as C
  throw new TypeError(`${name} must be ${expected}, not ${describeValue(value)}`)
}

export interface Reduced {
  readonly __aio__: string
  readonly state: unknown
  /** The module that defines the class, so a thread that has not loaded it can (users' own primitives). */
  readonly module?: string
  /** A proxy: it holds no memory of this process and may go to a spawned process or through a socket. */
  readonly portable?: boolean
}

export interface Shareable {
  [REDUCE](): Reduced
}

type Rebuild = (state: any) => unknown
const rebuilders = new Map<string, Rebuild>()
const wrappers = new Map<Function, (core: any) => unknown>()

/** Registers how to rebuild objects reduced under `tag` (generated classes call this on load). */
export function registerType(tag: string, rebuild: Rebuild): void {
  rebuilders.set(tag, rebuild)
}

/** Registers the public class that wraps a runtime core (used when a core hands out another core). */
export function registerWrapper<C>(coreClass: abstract new (...a: any[]) => C, wrap: (core: C) => unknown): void {
  wrappers.set(coreClass, wrap)
}

/** The public object for a runtime core, e.g. the AioRLock behind a Condition or a Value. */
export function wrapCore<T = unknown>(core: object): T {
  const wrap = wrappers.get(core.constructor)
  if (!wrap) throw new TypeError(`no public class is registered for ${core.constructor.name}`)
  return wrap(core) as T
}

// Modules whose loading registers shareable classes (the library's generated index, a user's own).
// A new thread or process loads them before it rebuilds anything: its parent names them, so the
// runtime never imports generated/ (DESIGN.md, runtime layers).
const classModules = new Set<string>()

/** Called on load by a module that registers classes (a generated index): children load it too. */
export function registerClassModule(url: string): void {
  classModules.add(url)
}

/** The class modules this thread knows of, for a child it starts. */
export function classModuleList(): string[] {
  return [...classModules]
}

/** Notes the class modules a parent named, for loadClassModules() later. */
export function announceClassModules(urls: Iterable<string>): void {
  for (const url of urls) classModules.add(url)
}

/** Loads the class modules a parent named (and any registered since); each module loads once. */
export async function loadClassModules(urls: Iterable<string> = []): Promise<void> {
  announceClassModules(urls)
  await Promise.all([...classModules].map((url) => import(url)))
}

function isReduced(v: unknown): v is Reduced {
  return typeof v === 'object' && v !== null && typeof (v as Reduced).__aio__ === 'string' && 'state' in v
}

function isShareable(v: object): v is Shareable {
  return typeof (v as Shareable)[REDUCE] === 'function'
}

/**
 * Replaces every shareable object in `value` (nested in arrays, plain objects, Maps and Sets) by
 * its record, and refuses what structured clone would drop or reject, naming its path. With
 * `portableOnly` (for a spawned process) it also refuses objects that live in this process's memory.
 */
export function reduceTree(value: unknown, path: string, portableOnly = false): unknown {
  switch (typeof value) {
    case 'function':
      throw new TypeError(
        `${path} is a function, which cannot be sent to another thread; pass it as the process target, or as { module, name }`,
      )
    case 'symbol':
      throw new TypeError(`${path} is a Symbol, which cannot be sent to another thread`)
    case 'object':
      break
    default:
      return value
  }
  if (value === null) return value
  if (isShareable(value)) {
    const record = value[REDUCE]()
    // A spawned process shares no memory with this one: only proxies may go to it.
    if (portableOnly && !record.portable) {
      throw new TypeError(`${path} is a ${record.__aio__} of the thread context, which lives in this process's memory; a spawned process needs ctx.${record.__aio__}() from getContext('spawn'), or an AioManager's`)
    }
    return record
  }
  if (Array.isArray(value)) return value.map((v, i) => reduceTree(v, `${path}[${i}]`, portableOnly))
  if (value instanceof Map) {
    const out = new Map()
    let i = 0
    for (const [k, v] of value) {
      out.set(reduceTree(k, `${path} key #${i}`, portableOnly), reduceTree(v, `${path}.get(${String(k)})`, portableOnly))
      i++
    }
    return out
  }
  if (value instanceof Set) {
    let i = 0
    return new Set([...value].map((v) => reduceTree(v, `${path} item #${i++}`, portableOnly)))
  }
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) out[key] = reduceTree((value as Record<string, unknown>)[key], `${path}.${key}`, portableOnly)
    return out
  }
  // Typed arrays, Dates, RegExps, Errors, ArrayBuffers and the like clone natively; check the rest.
  try {
    structuredClone(value)
  } catch (error) {
    throw new TypeError(`${path} (${describeValue(value)}) cannot be sent to another thread: ${(error as Error).message}`)
  }
  return value
}

/** Whether a reduced tree holds any shared object's record. */
export function holdsShared(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (isReduced(value)) return true
  if (Array.isArray(value) || value instanceof Set) {
    for (const v of value) if (holdsShared(v)) return true
    return false
  }
  if (value instanceof Map) {
    for (const [k, v] of value) if (holdsShared(k) || holdsShared(v)) return true
    return false
  }
  return Object.getPrototypeOf(value) === Object.prototype && Object.values(value).some(holdsShared)
}

/** The modules defining shared classes in `value` that this thread has not registered yet. */
export function missingModules(value: unknown, out = new Set<string>()): Set<string> {
  if (typeof value !== 'object' || value === null) return out
  if (isReduced(value)) {
    if (!rebuilders.has(value.__aio__) && value.module) out.add(value.module)
    missingModules(value.state, out)
  } else if (Array.isArray(value) || value instanceof Set) for (const v of value) missingModules(v, out)
  else if (value instanceof Map) for (const [k, v] of value) missingModules(k, out), missingModules(v, out)
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) missingModules(v, out)
  return out
}

/** The inverse of `reduceTree`, run on the receiving side. */
export function rebuildTree(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (isReduced(value)) {
    const rebuild = rebuilders.get(value.__aio__)
    if (!rebuild) throw new TypeError(`cannot rebuild a shared ${value.__aio__}: its class is not loaded in this thread`)
    return rebuild(value.state)
  }
  if (Array.isArray(value)) return value.map(rebuildTree)
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [rebuildTree(k), rebuildTree(v)]))
  if (value instanceof Set) return new Set([...value].map(rebuildTree))
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) out[key] = rebuildTree((value as Record<string, unknown>)[key])
    return out
  }
  return value
}

/** Checks a record's tag before a core rebuilds from it. */
export function expectTag(record: Reduced, tag: string): unknown {
  if (!isReduced(record) || record.__aio__ !== tag) {
    throw new TypeError(`expected a shared ${tag}, got ${isReduced(record) ? `a shared ${record.__aio__}` : describeValue(record)}`)
  }
  return record.state
}
