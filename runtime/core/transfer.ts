// Transfer is an explicit step. A shareable object reduces to a tagged, structured-cloneable
// record holding its SharedArrayBuffer(s); the receiving thread rebuilds a working object over
// the same memory. A record's tag picks its rebuilder, and a tag whose class is not loaded fails
// loudly; anything that cannot cross a thread boundary is refused at once with the path of the
// offending value, by the one classification below that every sending path shares.

import { describeValue } from './args.js'
import { debuglog } from 'node:util'
import { realpathSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setOwnKey } from './own-key.js'

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
/** A class module's portable part, by the module: what a spawned process loads in its place. */
const portableParts = new Map<string, string>()

/**
 * Called on load by a module that registers classes (a generated index): children load it too.
 * `portable`, when given, is the part of it that registers the classes able to reach another
 * process (proxies): a spawned process loads that part only (portableModuleList).
 */
export function registerClassModule(url: string, portable?: string): void {
  const real = realUrl(url)
  classModules.add(real)
  if (portable) portableParts.set(real, realUrl(portable))
}

/**
 * A file URL by its real path. A new thread's first module is loaded by its real path even under
 * `node --preserve-symlinks` (which keeps a link's path for imports only), so a class module named
 * by the link's path loaded the library a second time in every thread of an `npm link`ed install.
 */
function realUrl(url: string): string {
  if (!url.startsWith('file:')) return url
  try {
    return pathToFileURL(realpathSync(fileURLToPath(url))).href
  } catch {
    return url
  }
}

/** The class modules this thread knows of, for a child it starts. */
export function classModuleList(): string[] {
  return [...classModules]
}

/**
 * The class modules for a spawned process: each one's portable part where it has one. Only
 * proxies (and a user's own portable classes) can reach another process, so that is all such a
 * process rebuilds; code of its own that imports the library loads the rest.
 */
export function portableModuleList(): string[] {
  return [...new Set([...classModules].map((url) => portableParts.get(url) ?? url))]
}

/** Notes the class modules a parent named, for loadClassModules() later. */
export function announceClassModules(urls: Iterable<string>): void {
  for (const url of urls) classModules.add(url)
}

/** Loads the class modules a parent named (and any registered since); each module loads once. */
export async function loadClassModules(urls: Iterable<string> = []): Promise<void> {
  announceClassModules(urls)
  // One after the other: there is usually one, and concurrent imports of overlapping graphs in
  // a worker are where Node 20's V8 has crashed in async module evaluation (node#53238).
  for (const url of classModules) {
    if (imported.has(url)) continue
    await import(url)
    imported.add(url)
  }
}
/**
 * A spare's class modules (a thread or process booted before it has a process to run): the
 * JavaScript ones only, as one that needs a loader (a .ts one under tsx) loads after the
 * process's preload modules, which may register it.
 */
export function loadSpareClassModules(urls: string[]): Promise<void> {
  return loadClassModules(urls.filter((m) => /\.[cm]?js$/.test(m)))
}

/**
 * The class modules a process loads before its target: all of them, unless it loads them itself
 * when it needs them (`lazy`: a pool worker, when a task holds shared objects) and its own
 * arguments hold none (a pool's initargs may: a Value hands out its lock).
 */
export async function loadClassesFor(urls: string[], args: unknown, lazy: boolean | undefined): Promise<void> {
  if (!lazy || holdsShared(args)) await loadClassModules(urls)
  else announceClassModules(urls)
}
/** Class modules this thread has imported: a pool worker asks again at every message with shared objects. */
const imported = new Set<string>()

function isReduced(v: unknown): v is Reduced {
  return typeof v === 'object' && v !== null && typeof (v as Reduced).__aio__ === 'string' && 'state' in v
}

// --- what a sent value may hold --------------------------------------------------------------
// One classification for every path that sends a value to another thread: the queue and pipe
// encoder (ipc/serialize.ts) and a process's arguments (reduceTree). Both walk the same containers
// (arrays, plain objects, Maps, Sets), reduce shared objects found anywhere in them, and refuse the
// same values with the same message, so an item that a queue takes a process takes too.

// A const enum: tsc writes the numbers into the switches that use it, which V8 turns into a jump
// table (imported constants cost the encoder ~5% on small objects).
export const enum Kind {
  UNDEFINED, NULL, BOOLEAN, NUMBER, STRING, BIGINT,
  /** A function or a Symbol: refused. */
  REFUSED,
  ARRAY, PLAIN, MAP, SET,
  /** A shareable object (lock, queue, connection, proxy...): it travels as its record. */
  SHARED,
  BYTES, BUFFER,
  /**
   * A SharedArrayBuffer, or a typed array or DataView over one: it travels by reference, as
   * structured clone sends it, never as a copy (V8's serializer copies a view and refuses the buffer).
   */
  SHARED_MEMORY,
  /** Any other object (Date, RegExp, Error, other typed arrays...): V8's structured clone decides. */
  CLONE,
}

/** What `v` is to every sending path; the encoder inlines the primitive half for speed. */
function kindOf(v: unknown): Kind {
  switch (typeof v) {
    case 'number': return Kind.NUMBER
    case 'string': return Kind.STRING
    case 'boolean': return Kind.BOOLEAN
    case 'undefined': return Kind.UNDEFINED
    case 'bigint': return Kind.BIGINT
    case 'object': return v === null ? Kind.NULL : objectKindOf(v)
    default: return Kind.REFUSED
  }
}

/** kindOf for a non-null object. */
export function objectKindOf(v: object): Kind {
  if (Array.isArray(v)) return Kind.ARRAY
  // Before the prototype checks: whatever implements REDUCE travels as its record, a user's own
  // primitive written as an object literal too.
  if (typeof (v as Shareable)[REDUCE] === 'function') return Kind.SHARED
  const proto = Object.getPrototypeOf(v)
  if (proto === Object.prototype || proto === null) return Kind.PLAIN
  if (proto === Uint8Array.prototype) return (v as Uint8Array).buffer instanceof SharedArrayBuffer ? Kind.SHARED_MEMORY : Kind.BYTES
  if (proto === Buffer.prototype) return (v as Buffer).buffer instanceof SharedArrayBuffer ? Kind.SHARED_MEMORY : Kind.BUFFER
  // Structured clone turns a subclass into a plain Map/Set; so do both walks.
  if (v instanceof Map) return Kind.MAP
  if (v instanceof Set) return Kind.SET
  if (v instanceof SharedArrayBuffer || (ArrayBuffer.isView(v) && v.buffer instanceof SharedArrayBuffer)) return Kind.SHARED_MEMORY
  if (debug.enabled) noteClassInstance(v, proto)
  return Kind.CLONE
}

// NODE_DEBUG=aioprocessing: say once per class that its instances arrive without their class.
const debug = debuglog('aioprocessing')
const CLONED_AS_THEMSELVES = [Date, RegExp, ArrayBuffer, DataView, Boolean, Number, String, Error, Object.getPrototypeOf(Int8Array)]
const noted = new WeakSet<object>()

function noteClassInstance(v: object, proto: object): void {
  if (noted.has(proto) || CLONED_AS_THEMSELVES.some((c) => v instanceof c)) return
  noted.add(proto)
  const name = (proto as { constructor?: { name?: string } }).constructor?.name || 'an anonymous class'
  debug(`an instance of ${name} is sent to another thread or process: it arrives as a plain object with the same fields, without its class (structured clone keeps no prototype). Pass its fields and rebuild it there, or host it in a manager with register().`)
}

// Steps of a path that are not a property or an index. Made only inside Maps and Sets, and
// formatted only for an error message.
class MapKey {
  constructor(readonly ordinal: number) {}
}
class MapValue {
  constructor(readonly key: unknown) {}
}
class SetItem {
  constructor(readonly ordinal: number) {}
}

function keyText(key: unknown): string {
  try {
    return String(key)
  } catch {
    return describeValue(key)
  }
}

/**
 * Where a walk is inside the value it sends, as a stack of steps joined into text only for an
 * error message: building `item.a[2]` for every field cost more than encoding the field.
 */
/** How deep a value sent to another thread or process may nest (see TreePath.enter); Python's pickle stops at its recursion limit, 1000 too. */
export const MAX_DEPTH = 1000

export class TreePath {
  private readonly steps: unknown[] = []
  constructor(private root = 'item') {}
  reset(root: string): void {
    this.root = root
    this.steps.length = 0
  }
  index(i: number): void {
    this.enter(i)
  }
  property(key: string): void {
    this.enter(key)
  }
  mapKey(ordinal: number): void {
    this.enter(new MapKey(ordinal))
  }
  mapValue(key: unknown): void {
    this.enter(new MapValue(key))
  }
  setItem(ordinal: number): void {
    this.enter(new SetItem(ordinal))
  }
  leave(): void {
    this.steps.pop()
  }
  /**
   * Both walks recurse, so a value deeper than this (and a value that holds itself, which is
   * infinitely deep to a copy) gets a clear error here rather than a stack overflow.
   */
  private enter(step: unknown): void {
    if (this.steps.length >= MAX_DEPTH) {
      throw new TypeError(`${this.toString(8)} is nested more than ${MAX_DEPTH} levels deep, or holds itself (a circular reference): such a value cannot be sent, as it is copied as a tree; flatten it, or share it through a manager's dict or list`)
    }
    this.steps.push(step)
  }
  /** The path, its first `most` steps only when given (a circular one is as long as the limit). */
  toString(most = Infinity): string {
    let text = this.root
    let shown = 0
    for (const s of this.steps) {
      if (shown++ === most) return `${text}…`
      if (typeof s === 'number') text += `[${s}]`
      else if (typeof s === 'string') text += `.${s}`
      else if (s instanceof MapKey) text += ` key #${s.ordinal}`
      else if (s instanceof MapValue) text += `.get(${keyText(s.key)})`
      else text += ` item #${(s as SetItem).ordinal}`
    }
    return text
  }
}

/** The error for a value of kind REFUSED at `path`. */
export function refuseValue(path: TreePath | string, value: unknown): never {
  throw new TypeError(
    `${path} is ${describeValue(value)}, which cannot be sent to another thread` +
      (typeof value === 'function' ? '; a function travels only as a process target (as its source, or as { module, name })' : ''),
  )
}

/** The error for a value of kind CLONE that V8's structured clone refused. */
export function refuseClone(path: TreePath | string, value: unknown, error: unknown): never {
  throw new TypeError(`${path} (${describeValue(value)}) cannot be sent to another thread: ${(error as Error).message}`, { cause: error })
}

/**
 * The record of a shareable object found at `path`. With `portableOnly` (a spawned process shares
 * no memory with this one) only proxies may go.
 */
export function reduceShared(value: Shareable, path: TreePath | string, portableOnly: boolean): Reduced {
  reductions++
  const record = value[REDUCE]()
  if (portableOnly && !record.portable) {
    throw new TypeError(`${path} is ${/^[AEIOU]/.test(record.__aio__) ? 'an' : 'a'} ${record.__aio__} of the thread context, which lives in this process's memory; a spawned process needs ctx.${record.__aio__}() from getContext('spawn'), or an AioManager's`)
  }
  return record
}

// Shared memory goes in a record of its own so that the encoder can leave it with the broker
// like a lock's record; every thread can rebuild it, nothing needs loading.
const SHARED_MEMORY_TAG = 'SharedMemory'
registerType(SHARED_MEMORY_TAG, (memory) => memory)

/** The record of shared memory found at `path`; a spawned process shares none with this one. */
export function reduceSharedMemory(value: object, path: TreePath | string, portableOnly: boolean): Reduced {
  if (portableOnly) {
    throw new TypeError(`${path} is ${describeValue(value)} over this process's shared memory, which a spawned process cannot see; send a copy, or use ctx.AioArray() from getContext('spawn')`)
  }
  return { __aio__: SHARED_MEMORY_TAG, state: value }
}

/**
 * Replaces every shareable object in `value` by its record, for a process's arguments, which
 * travel by structured clone; refuses what the queue encoder refuses, naming its path.
 */
export function reduceTree(value: unknown, path: string, portableOnly = false): unknown {
  return reduceAt(value, new TreePath(path), portableOnly)
}

/** Shareable objects reduced so far (a caller compares before and after to know whether a tree held any). */
let reductions = 0

/**
 * reduceTree for each item of `items`, named `name[first + i]` in errors (one path object, built
 * into text only for an error), and whether any held a shared object: one walk of the data.
 */
export function reduceItems(items: readonly unknown[], name: string, first: number, portableOnly: boolean): { items: unknown[]; shared: boolean } {
  const before = reductions
  const path = new TreePath(name)
  const out = new Array(items.length)
  for (let i = 0; i < items.length; i++) {
    path.index(first + i)
    out[i] = reduceAt(items[i], path, portableOnly)
    path.leave()
  }
  return { items: out, shared: reductions !== before }
}

function reduceAt(value: unknown, path: TreePath, portableOnly: boolean): unknown {
  switch (kindOf(value)) {
    case Kind.REFUSED:
      return refuseValue(path, value)
    case Kind.SHARED:
      return reduceShared(value as Shareable, path, portableOnly)
    case Kind.SHARED_MEMORY:
      // Structured clone already sends it by reference; the call only refuses it for a spawned process.
      reduceSharedMemory(value as object, path, portableOnly)
      return value
    case Kind.ARRAY: {
      const items = value as unknown[]
      const out = new Array(items.length)
      for (let i = 0; i < items.length; i++) {
        path.index(i)
        out[i] = reduceAt(items[i], path, portableOnly)
        path.leave()
      }
      return out
    }
    case Kind.PLAIN: {
      const out: Record<string, unknown> = {}
      for (const key of Object.keys(value as object)) {
        path.property(key)
        setOwnKey(out, key, reduceAt((value as Record<string, unknown>)[key], path, portableOnly))
        path.leave()
      }
      return out
    }
    case Kind.MAP: {
      const out = new Map()
      let i = 0
      for (const [k, v] of value as Map<unknown, unknown>) {
        path.mapKey(i++)
        const key = reduceAt(k, path, portableOnly)
        path.leave()
        path.mapValue(k)
        out.set(key, reduceAt(v, path, portableOnly))
        path.leave()
      }
      return out
    }
    case Kind.SET: {
      const out = new Set()
      let i = 0
      for (const v of value as Set<unknown>) {
        path.setItem(i++)
        out.add(reduceAt(v, path, portableOnly))
        path.leave()
      }
      return out
    }
    case Kind.CLONE:
      try {
        structuredClone(value)
      } catch (error) {
        refuseClone(path, value, error)
      }
      return value
    default:
      return value
  }
}

/** Whether a reduced tree holds any shared object's record. */
export function holdsShared(value: unknown): boolean {
  return !visitRecords(value, () => false)
}

/** The modules defining shared classes in `value` that this thread has not registered yet. */
export function missingModules(value: unknown): Set<string> {
  const out = new Set<string>()
  visitRecords(value, (record) => {
    if (!rebuilders.has(record.__aio__) && record.module) out.add(record.module)
    return true
  })
  return out
}

/**
 * Calls `visit` on every shared object's record in a reduced tree (and in the records' states),
 * until it returns false; false when it did.
 */
function visitRecords(value: unknown, visit: (record: Reduced) => boolean): boolean {
  if (typeof value !== 'object' || value === null) return true
  if (isReduced(value)) return visit(value) && visitRecords(value.state, visit)
  if (Array.isArray(value) || value instanceof Set) {
    for (const v of value) if (!visitRecords(v, visit)) return false
  } else if (value instanceof Map) {
    for (const [k, v] of value) if (!visitRecords(k, visit) || !visitRecords(v, visit)) return false
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) if (!visitRecords(v, visit)) return false
  }
  return true
}

/**
 * A shared object that cannot be rebuilt here: its class is not loaded in this thread. `module`
 * is the module its record names (a user's own proxy class names its own), which would load it.
 */
export class ClassNotLoadedError extends TypeError {
  constructor(
    readonly tag: string,
    readonly module: string | undefined,
    /** The record's state (a proxy's address and id): what a rebuild would have taken over. */
    readonly state: unknown,
  ) {
    super(`cannot rebuild a shared ${tag}: its class is not loaded in this thread${module ? ` (its module is ${module})` : ''}`)
  }
}

/**
 * The error of a message that holds `unloaded` objects: which class, how to load it, and
 * `outcome`, what became of the call. Nothing imports a record's module for it: the module may be
 * another program's main script, which would run again there (a server that imported one hung on
 * the script's own connect()).
 */
export function unloadedError(unloaded: readonly ClassNotLoadedError[], outcome: string): TypeError {
  return new TypeError(`${unloaded[0].message}: load its module in this thread first (import it, or register it with registerClassModule() in the program that starts the others); ${outcome}`)
}

/** Where rebuildTree() puts what it cannot rebuild, while a caller collects instead of failing (collectingUnloaded). */
let unloaded: ClassNotLoadedError[] | undefined

/**
 * Runs `decode` with every shared object whose class is not loaded left out (undefined in its
 * place) instead of failing: for a message that must be read whole (a manager's answer, whose
 * call and item are to be sorted out) before what it holds can be.
 */
export function collectingUnloaded<T>(decode: () => T): { value: T; unloaded: ClassNotLoadedError[] } {
  const saved = unloaded
  const mine: ClassNotLoadedError[] = (unloaded = [])
  try {
    return { value: decode(), unloaded: mine }
  } finally {
    unloaded = saved
  }
}

/** The inverse of `reduceTree`, run on the receiving side. */
export function rebuildTree(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (isReduced(value)) {
    const rebuild = rebuilders.get(value.__aio__)
    if (!rebuild) {
      const error = new ClassNotLoadedError(value.__aio__, value.module, value.state)
      if (!unloaded) throw error
      unloaded.push(error)
      return undefined
    }
    return rebuild(value.state)
  }
  if (Array.isArray(value)) return value.map(rebuildTree)
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [rebuildTree(k), rebuildTree(v)]))
  if (value instanceof Set) return new Set([...value].map(rebuildTree))
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) setOwnKey(out, key, rebuildTree((value as Record<string, unknown>)[key]))
    return out
  }
  return value
}
