// What a manager server hosts, per typeid (see manager-server.ts). The types of the spec are the
// library's own classes, called through their coro_ twins (the generated proxy modules say what a
// proxy may call), except the calls of a Lock, RLock or Condition whose meaning depends on who
// makes them: those run on the same cores with the client as the owner (ownedCall). dict, list
// and Namespace are Python's containers.

import { NotImplementedError, ValueError } from '../core/errors.js'
import { CLIENT_BASE, LockCore, RLockCore, type LockLike } from '../sync/lock.js'
import { ConditionCore } from '../sync/condition.js'
import { QueueCore } from '../ipc/queue.js'
import { CORE, MAX_DEPTH } from '../core/transfer.js'
import { PENDING, coroBlockOn } from '../core/wait.js'
import { checkBoolean, checkInteger, checkTimeout, deadlineOf, type Timeout } from '../core/args.js'
import { PyTuple } from '../ipc/py-tuple.js'
import { DICT_METHODS, LIST_METHODS, NAMESPACE_METHODS } from './protocol.js'
import { setOwnKey } from '../core/own-key.js'

/**
 * `value` with its nodes replaced: a node (the value, then each part of what it holds) for which
 * `replace` gives something other than undefined becomes that; arrays, Python tuples (kept
 * tuples), Maps' values and plain objects are rebuilt around their parts, and given back as they
 * are when no part changed (the walk runs on every result a Python client gets, and most have
 * nothing to replace: a copy of a large list each time was waste); anything else stays. The
 * server's walks over what goes in and out of its objects (manager-server.ts, py-server.ts),
 * whose results are encoded next: a tree shared with the input is as good as a copy.
 */
export function mapTree(value: unknown, replace: (v: unknown) => unknown, depth = 0): unknown {
  const replaced = replace(value)
  if (replaced !== undefined) return replaced
  if (value === null || typeof value !== 'object') return value
  // A value that holds itself would overflow the stack (RangeError): say what it is, as an argument's walk does (transfer.ts).
  if (depth >= MAX_DEPTH) throw new TypeError(`a value nested more than ${MAX_DEPTH} levels deep, or holding itself (a circular reference), cannot be sent, as it is copied as a tree; flatten it, or share it through a manager's dict or list`)
  let changed = false
  const each = (v: unknown): unknown => {
    const out = mapTree(v, replace, depth + 1)
    if (out !== v) changed = true
    return out
  }
  if (value instanceof PyTuple) {
    const out = PyTuple.from(value, each)
    return changed ? out : value
  }
  if (Array.isArray(value)) {
    // Copied from the first part that changes on: nothing is allocated for a tree left as it is.
    let out: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const part = mapTree(value[i], replace, depth + 1)
      if (out === undefined && part !== value[i]) out = value.slice(0, i)
      out?.push(part)
    }
    return out ?? value
  }
  if (value instanceof Map) {
    const out = new Map([...value].map(([k, v]) => [k, each(v)]))
    return changed ? out : value
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    let out: Record<string, unknown> | undefined
    for (const k of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[k]
      const part = mapTree(v, replace, depth + 1)
      if (out === undefined && part !== v) out = { ...(value as Record<string, unknown>) }
      if (out !== undefined) setOwnKey(out, k, part)
    }
    return out ?? value
  }
  return value
}

/** What a generated proxy module tells the server about its class: what a proxy may call. */
export interface HostedSpec {
  cls: new (...args: any[]) => object
  methods: Record<string, { params: number; coro: boolean; composite: boolean }>
  properties: Record<string, { set: boolean }>
  /** 'acquire': acquisitions are counted per client and released when it disconnects. */
  track?: 'acquire'
}

/** A client of the server (one for all its connections): its acquisitions are released when it disconnects. */
export interface ClientRef {
  held: Map<number, number>
}

// A client's identity in owner words: CLIENT_BASE + n, so that it never equals a thread's
// (identity.SELF is below it, 0 is nobody). Given on first use, so the server's socket code only
// has to keep one ClientRef per client.
const clientOwners = new WeakMap<ClientRef, number>()
let clientCount = 0
function ownerOf(client: ClientRef): number {
  let owner = clientOwners.get(client)
  if (owner === undefined) {
    // Past 2^30 clients the ids start over: by then the first ones are long gone.
    clientCount = (clientCount + 1) % CLIENT_BASE
    clientOwners.set(client, (owner = CLIENT_BASE + clientCount))
  }
  return owner
}

/** The core of a Lock, RLock or Condition, whose acquire, release, wait and notify depend on the caller. */
function ownedCore(obj: unknown): LockLike | ConditionCore | undefined {
  const core = obj !== null && typeof obj === 'object' ? (obj as { [CORE]?: unknown })[CORE] : undefined
  return core instanceof LockCore || core instanceof RLockCore || core instanceof ConditionCore ? core : undefined
}

/**
 * The caller-dependent calls of a hosted lock or condition, run on its core with the client as the
 * owner, in the same awaitable loop as the coro_ twins: through the twins themselves the server's
 * thread would be the owner, and every client would hold what any one acquired. These bodies are
 * the generated coro_ ones with the owner passed on; the algorithm stays in the cores.
 */
async function ownedCall(core: LockLike | ConditionCore, method: string, args: unknown[], signal: AbortSignal, owner: number): Promise<unknown> {
  const lock = core instanceof ConditionCore ? core.lock : core
  if (method === 'acquire') {
    const [block = true, timeout = null] = args as [boolean?, Timeout?]
    checkBoolean('block', block)
    checkTimeout('timeout', timeout)
    signal.throwIfAborted()
    const r = lock.tryAcquire(owner)
    if (r !== PENDING) return r
    if (!block) return false
    return coroBlockOn<boolean>(lock, () => lock.acquireAttempt(lock, owner), deadlineOf('timeout', timeout), () => false, signal)
  }
  if (method === 'release') return lock.release(owner)
  if (!(core instanceof ConditionCore)) return NOT_OWNED
  if (method === 'wait') {
    const [timeout = null] = args as [Timeout?]
    checkTimeout('timeout', timeout)
    signal.throwIfAborted()
    const s = core.waitBegin(owner)
    const r = core.waitAttempt(s)
    if (r !== PENDING) return r
    return coroBlockOn<boolean>(s, () => core.waitAttempt(s), deadlineOf('timeout', timeout), () => core.waitExpire(s), signal, true)
  }
  if (method === 'notify') return core.notify(checkInteger('n', args[0] === undefined ? 1 : args[0], 0), owner)
  if (method === 'notifyAll') return core.notifyAll(owner)
  return NOT_OWNED
}
const NOT_OWNED: unique symbol = Symbol('not an owned call')

/** Undoes one acquisition of a disconnected client; a lock it no longer holds is left alone. */
function releaseFor(obj: unknown, client: ClientRef): void {
  const core = ownedCore(obj)
  if (!core) return (obj as { release(): void }).release()
  const lock = core instanceof ConditionCore ? core.lock : core
  const owner = ownerOf(client)
  if (lock.isMine(owner)) lock.release(owner)
}

export interface HostedType {
  exposed?: string[]
  /** It stores what it is given by value (a queue's items, a pipe's messages): a copy comes out. */
  byValue?: boolean
  create(args: unknown[]): unknown
  call(obj: unknown, method: string, args: unknown[], signal: AbortSignal, client: ClientRef, id: number): Promise<unknown>
  /** Undoes one acquisition of `client` (on its disconnect). */
  release?(obj: unknown, client: ClientRef): void
  /**
   * For a call that took something out of `obj` (a queue's get): how to put `result` back if
   * the caller dies before it has it; undefined for every other call.
   */
  putBack?(obj: unknown, method: string, result: unknown): (() => Promise<void>) | undefined
}

/** A hosted queue's get() took an item: put it back, at the end, if its taker dies before it has it. */
function queuePutBack(obj: unknown, method: string, result: unknown): (() => Promise<void>) | undefined {
  if (method !== 'get' && method !== 'getNowait') return undefined
  const core = (obj as { [CORE]?: unknown })[CORE]
  return core instanceof QueueCore ? () => core.requeue(result) : undefined
}

function refuse(typeid: string, method: string): never {
  throw new NotImplementedError(`'${typeid}' proxy does not expose method '${method}'`)
}

/** A call's arguments as the method's parameters: cut to `n`, missing ones undefined (their defaults apply). */
function exactly(args: unknown[], n: number): unknown[] {
  const out = args.slice(0, n)
  while (out.length < n) out.push(undefined)
  return out
}

function hold(client: ClientRef, id: number, delta: number): void {
  const n = (client.held.get(id) ?? 0) + delta
  if (n > 0) client.held.set(id, n)
  else client.held.delete(id)
}

/** The client that last acquired a hosted Lock or Semaphore: charged when another client releases it. */
const lockOwner = new WeakMap<object, ClientRef>()

/** A type from the spec: each call goes to the class's coro_ twin (or its plain method). */
function specType(typeid: string, t: HostedSpec): HostedType {
  const track = t.track ?? 'none'
  return {
    byValue: true,
    create: (args) => new t.cls(...args),
    async call(obj, method, args, signal, client, id) {
      const o = obj as Record<string, any>
      if (method === '__get__' || method === '__set__') {
        const name = String(args[0])
        const p = t.properties[name]
        if (!p || (method === '__set__' && !p.set)) refuse(typeid, `${method === '__get__' ? 'get' : 'set'} ${name}`)
        if (method === '__get__') return o[name]
        o[name] = args[1]
        return undefined
      }
      const m = Object.hasOwn(t.methods, method) ? t.methods[method] : undefined
      if (!m || m.composite) refuse(typeid, method)
      const padded = exactly(args, m.params)
      const core = ownedCore(o)
      let result = core ? await ownedCall(core, method, padded, signal, ownerOf(client)) : NOT_OWNED
      if (result === NOT_OWNED) result = m.coro ? await o[`coro_${method}`](...padded, { signal }) : o[method](...padded)
      if (track === 'acquire') {
        if (method === 'acquire' && result === true) {
          hold(client, id, 1)
          lockOwner.set(o, client)
        } else if (method === 'release') {
          // Anyone may release a Lock or Semaphore. The count comes off the releaser if it held
          // some; else off the Lock's recorded owner, so that owner's disconnect releases nothing more.
          const n = Number(padded[0] ?? 1)
          const charged = client.held.has(id) ? client : lockOwner.get(o)
          if (charged) hold(charged, id, -n)
          lockOwner.delete(o)
        }
      }
      return result
    },
    release: track === 'acquire' ? releaseFor : undefined,
    putBack: queuePutBack,
  }
}

/**
 * The identity of a dict key that is an object: equal tuples, lists and byte strings are one key,
 * as in Python (each call decodes a fresh object, so a Map's own identity would never match).
 * Undefined for other objects, which stay keys by identity.
 */
function keySignature(k: unknown): string | undefined {
  if (k === null || typeof k !== 'object') return `${typeof k}:${typeof k === 'string' ? JSON.stringify(k) : String(k)}`
  if (k instanceof Uint8Array) return `b:${Buffer.from(k.buffer, k.byteOffset, k.length).toString('hex')}`
  if (Array.isArray(k)) {
    const parts: string[] = []
    for (const x of k) {
      const p = keySignature(x)
      if (p === undefined) return undefined
      parts.push(p)
    }
    return `${k.constructor === Array ? 'l' : 't'}[${parts.join(',')}]`
  }
  return undefined
}

/** Python's dict, as a Map: keys may be any serializable value; equal tuples, arrays and bytes are one key. */
export class HostedDict {
  readonly map = new Map<unknown, unknown>()
  /** The stored key object of each structural key (keySignature) in the map. */
  private readonly canon = new Map<string, unknown>()
  /**
   * The keys in insertion order, for popitem(): kept until a new key comes (then it is no longer
   * the order), with keys deleted meanwhile skipped, so that a loop of popitem() costs O(n), not
   * a copy of the keys per call.
   */
  private order: unknown[] | undefined
  constructor(init?: unknown) {
    for (const [k, v] of init instanceof Map ? init : init && typeof init === 'object' ? Object.entries(init) : []) this.set(k, v)
  }
  /** The key as stored: an object equal to one already stored is that one (a lookup stores nothing). */
  private k(key: unknown): unknown {
    if (key === null || typeof key !== 'object') return key
    const sig = keySignature(key)
    return sig === undefined ? key : (this.canon.get(sig) ?? key)
  }
  /** The key to store under: k(key), remembered as the canonical one when it is new. */
  private stored(key: unknown): unknown {
    const k = this.k(key)
    if (this.map.has(k)) return k
    this.order = undefined
    const sig = k !== null && typeof k === 'object' ? keySignature(k) : undefined
    if (sig !== undefined) this.canon.set(sig, k)
    return k
  }
  private forget(key: unknown): void {
    if (key !== null && typeof key === 'object') {
      const sig = keySignature(key)
      if (sig !== undefined) this.canon.delete(sig)
    }
  }
  get(key: unknown, fallback?: unknown): unknown {
    key = this.k(key)
    return this.map.has(key) ? this.map.get(key) : fallback
  }
  getitem(key: unknown): unknown {
    const k = this.k(key)
    if (!this.map.has(k)) throw keyError(key)
    return this.map.get(k)
  }
  set(key: unknown, value: unknown): void {
    this.map.set(this.stored(key), value)
  }
  delete(key: unknown): void {
    const k = this.k(key)
    if (!this.map.delete(k)) throw keyError(key)
    this.forget(k)
  }
  has(key: unknown): boolean {
    return this.map.has(this.k(key))
  }
  keys(): unknown[] {
    return [...this.map.keys()]
  }
  values(): unknown[] {
    return [...this.map.values()]
  }
  items(): [unknown, unknown][] {
    return [...this.map.entries()]
  }
  len(): number {
    return this.map.size
  }
  clear(): void {
    this.map.clear()
    this.canon.clear()
    this.order = undefined
  }
  pop(key: unknown, ...fallback: unknown[]): unknown {
    const k = this.k(key)
    if (this.map.has(k)) {
      const v = this.map.get(k)
      this.map.delete(k)
      this.forget(k)
      return v
    }
    if (fallback.length && fallback[0] !== undefined) return fallback[0]
    throw keyError(key)
  }
  popitem(): [unknown, unknown] {
    if (this.map.size === 0) throw keyError('popitem(): dictionary is empty')
    for (;;) {
      if (!this.order?.length) this.order = [...this.map.keys()]
      const k = this.order.pop()
      if (!this.map.has(k)) continue
      const v = this.map.get(k)
      this.map.delete(k)
      this.forget(k)
      return [k, v]
    }
  }
  setdefault(key: unknown, value?: unknown): unknown {
    const k = this.stored(key)
    if (!this.map.has(k)) this.map.set(k, value ?? null)
    return this.map.get(k)
  }
  update(other: unknown): void {
    for (const [k, v] of other instanceof Map ? other : Object.entries(other as object)) this.set(k, v)
  }
  copy(): Map<unknown, unknown> {
    return new Map(this.map)
  }
  toString(): string {
    return `{${[...this.map].map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`
  }
}

/** Python's KeyError has no JS class: a RangeError named KeyError, with the key as message. */
function keyError(key: unknown): Error {
  const e = new RangeError(typeof key === 'string' ? `'${key}'` : String(key))
  e.name = 'KeyError'
  return e
}

function indexError(): Error {
  const e = new RangeError('list index out of range')
  e.name = 'IndexError'
  return e
}

/** Python's list. */
export class HostedList {
  readonly items: unknown[]
  constructor(init?: Iterable<unknown>) {
    this.items = init ? [...init] : []
  }
  private at(i: number): number {
    const j = i < 0 ? this.items.length + i : i
    if (!Number.isInteger(j) || j < 0 || j >= this.items.length) throw indexError()
    return j
  }
  get(i: number): unknown {
    return this.items[this.at(i)]
  }
  set(i: number, v: unknown): void {
    this.items[this.at(i)] = v
  }
  append(v: unknown): void {
    this.items.push(v)
  }
  extend(vs: unknown[]): void {
    // One push per item: push(...vs) of a million items overflows the stack.
    for (const v of vs) this.items.push(v)
  }
  insert(i: number, v: unknown): void {
    this.items.splice(i < 0 ? Math.max(0, this.items.length + i) : i, 0, v)
  }
  pop(i = -1): unknown {
    return this.items.splice(this.at(i), 1)[0]
  }
  remove(v: unknown): void {
    const i = this.index(v)
    this.items.splice(i, 1)
  }
  index(v: unknown): number {
    const i = this.items.findIndex((x) => same(x, v))
    if (i < 0) throw new ValueError(`${JSON.stringify(v)} is not in list`)
    return i
  }
  count(v: unknown): number {
    return this.items.filter((x) => same(x, v)).length
  }
  sort(reverse = false): void {
    this.items.sort((a, b) => ((a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0) * (reverse ? -1 : 1))
  }
  reverse(): void {
    this.items.reverse()
  }
  len(): number {
    return this.items.length
  }
  slice(start?: number, end?: number): unknown[] {
    return this.items.slice(start, end)
  }
  toArray(): unknown[] {
    return [...this.items]
  }
  clear(): void {
    this.items.length = 0
  }
  toString(): string {
    return JSON.stringify(this.items)
  }
}

function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b)
}

/** Python's Namespace: attributes set, read and deleted through the proxy. */
export class HostedNamespace {
  readonly attrs = new Map<string, unknown>()
  constructor(init?: Record<string, unknown>) {
    for (const [k, v] of Object.entries(init ?? {})) this.attrs.set(k, v)
  }
  getattr(name: string): unknown {
    if (!this.attrs.has(name)) {
      const e = new TypeError(`'Namespace' object has no attribute '${name}'`)
      e.name = 'AttributeError'
      throw e
    }
    return this.attrs.get(name)
  }
  setattr(name: string, value: unknown): void {
    this.attrs.set(name, value)
  }
  delattr(name: string): void {
    this.getattr(name)
    this.attrs.delete(name)
  }
  hasattr(name: string): boolean {
    return this.attrs.has(name)
  }
  names(): string[] {
    return [...this.attrs.keys()]
  }
  toString(): string {
    const shown = [...this.attrs].filter(([k]) => !k.startsWith('_')).sort(([a], [b]) => (a < b ? -1 : 1))
    return `Namespace(${shown.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')})`
  }
}

/** A container: its methods called as they are. */
function containerType(typeid: string, create: (args: unknown[]) => unknown, methods: readonly string[]): HostedType {
  return {
    exposed: [...methods],
    create,
    async call(obj, method, args) {
      if (!methods.includes(method)) refuse(typeid, method)
      return (obj as Record<string, (...a: unknown[]) => unknown>)[method](...args)
    },
  }
}


/**
 * Every type a server can host. The library's generated class modules add its classes, and a
 * user's generated proxy modules theirs, with registerHostedType(); the container types are here.
 * It has no prototype: a client's typeid is looked up in it as given ('constructor' is no type).
 */
export const HOSTED: Record<string, HostedType> = Object.assign(Object.create(null) as Record<string, HostedType>, {
  dict: containerType('dict', (args) => new HostedDict(args[0]), DICT_METHODS),
  list: containerType('list', (args) => new HostedList(args[0] as Iterable<unknown>), LIST_METHODS),
  Namespace: containerType('Namespace', (args) => new HostedNamespace(args[0] as Record<string, unknown>), NAMESPACE_METHODS),
})

/** Called by each generated proxy module: the server can host this class. */
export function registerHostedType(typeid: string, spec: HostedSpec): void {
  HOSTED[typeid] ??= specType(typeid, spec)
}
