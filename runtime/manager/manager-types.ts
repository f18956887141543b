// What a manager server hosts, per typeid (see manager-server.ts). Most types are the library's
// own classes, called through their coro_ twins (PROXY_TABLE, generated from the spec, says what
// a proxy may call). Two need owners that are clients, not threads: RLock and Condition (every
// call runs on the server's one thread), so they are hosted by the classes below. dict, list and
// Namespace are Python's containers.

import { NotImplementedError, RuntimeError, ValueError } from '../core/errors.js'
import { LockCore } from '../sync/lock.js'
import { CORE, wrapCore } from '../core/transfer.js'
import type { CoroOptions } from '../core/wait.js'

/** The public AioLock (generated over LockCore) as the hosted types below use it. */
interface PublicLock {
  coro_acquire(block?: boolean, timeout?: number | null, options?: CoroOptions): Promise<boolean>
  release(): void
}
function isPublicLock(lock: unknown): lock is PublicLock {
  return typeof lock === 'object' && lock !== null && (lock as { [CORE]?: unknown })[CORE] instanceof LockCore
}

/** What a generated proxy module tells the server about its class: what a proxy may call. */
export interface HostedSpec {
  cls: new (...args: any[]) => object
  methods: Record<string, { params: number; coro: boolean; composite: boolean }>
  properties: Record<string, { set: boolean }>
  /** 'acquire': acquisitions are counted per client and released when it disconnects. */
  track?: 'acquire'
}

/** A client of the server: its acquisitions are released when it disconnects. */
export interface ClientRef {
  held: Map<number, number>
}

export interface HostedType {
  exposed?: string[]
  create(args: unknown[]): unknown
  call(obj: unknown, method: string, args: unknown[], signal: AbortSignal, client: ClientRef, id: number): Promise<unknown>
  /** Undoes one acquisition of `client` (on its disconnect). */
  release?(obj: unknown, client: ClientRef): void
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

/** Which client holds a hosted Lock (for a Condition built on it). */
const lockOwner = new WeakMap<object, ClientRef>()

/** A type from the spec: each call goes to the class's coro_ twin (or its plain method). */
function specType(typeid: string, t: HostedSpec): HostedType {
  const track = t.track ?? 'none'
  return {
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
      const result = m.coro ? await o[`coro_${method}`](...padded, { signal }) : o[method](...padded)
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
    release: track === 'acquire' ? (obj) => (obj as { release(): void }).release() : undefined,
  }
}

/** Python's manager RLock: owned by a client (each client thread has its own connection). */
export class HostedRLock {
  readonly lock = wrapCore<PublicLock>(LockCore.create())
  owner: ClientRef | null = null
  count = 0

  async acquire(client: ClientRef, block = true, timeout: number | null | undefined = null, signal?: AbortSignal): Promise<boolean> {
    if (this.owner === client) {
      this.count++
      return true
    }
    if (!(await this.lock.coro_acquire(block, timeout, { signal }))) return false
    this.owner = client
    this.count = 1
    return true
  }

  release(client: ClientRef): void {
    if (this.owner !== client) throw new RuntimeError('cannot release un-acquired lock')
    if (--this.count === 0) {
      this.owner = null
      this.lock.release()
    }
  }

  owns(client: ClientRef): boolean {
    return this.owner === client
  }
  /** Condition.wait: gives the lock up whatever the depth, and says what to restore. */
  releaseAll(client: ClientRef): number {
    const n = this.count
    this.count = 1
    this.release(client)
    return n
  }
  async restore(client: ClientRef, depth: number): Promise<void> {
    await this.acquire(client, true, null)
    this.count = depth
  }

  toString(): string {
    return `AioRLock(owner=${this.owner ? 'a client' : 'None'}, count=${this.count})`
  }
}

/** A Lock used by a Condition: ownership as the Lock's hosted calls recorded it. */
class LockAsOwned {
  constructor(readonly lock: PublicLock) {}
  async acquire(client: ClientRef, block = true, timeout: number | null | undefined = null, signal?: AbortSignal): Promise<boolean> {
    const ok = await this.lock.coro_acquire(block, timeout, { signal })
    if (ok) lockOwner.set(this.lock, client)
    return ok
  }
  release(client: ClientRef): void {
    if (lockOwner.get(this.lock) !== client) throw new RuntimeError('cannot release un-acquired lock')
    lockOwner.delete(this.lock)
    this.lock.release()
  }
  owns(client: ClientRef): boolean {
    return lockOwner.get(this.lock) === client
  }
  releaseAll(client: ClientRef): number {
    this.release(client)
    return 1
  }
  async restore(client: ClientRef): Promise<void> {
    await this.acquire(client, true, null)
  }
}

/** Python's manager Condition: waiters are promises on the server's thread; notify(n) wakes the n longest. */
export class HostedCondition {
  readonly lock: HostedRLock | LockAsOwned
  private readonly waiters: { wake(): void }[] = []

  constructor(lock?: unknown) {
    if (lock === undefined || lock === null) this.lock = new HostedRLock()
    else if (lock instanceof HostedRLock) this.lock = lock
    else if (isPublicLock(lock)) this.lock = new LockAsOwned(lock)
    else throw new TypeError('lock must be an AioLock or an AioRLock (a proxy of one of this manager\'s)')
  }

  acquire(client: ClientRef, block?: boolean, timeout?: number | null, signal?: AbortSignal): Promise<boolean> {
    return this.lock.acquire(client, block, timeout, signal)
  }
  release(client: ClientRef): void {
    this.lock.release(client)
  }

  async wait(client: ClientRef, timeout: number | null | undefined, signal?: AbortSignal): Promise<boolean> {
    if (!this.lock.owns(client)) throw new RuntimeError('cannot wait on un-acquired lock')
    const depth = this.lock.releaseAll(client)
    let waiter!: { wake(): void }
    let timer: ReturnType<typeof setTimeout> | undefined
    let onAbort: (() => void) | undefined
    const notified = await new Promise<boolean>((resolve) => {
      waiter = { wake: () => resolve(true) }
      this.waiters.push(waiter)
      if (timeout !== null && timeout !== undefined) timer = setTimeout(() => resolve(false), Math.max(0, timeout))
      if (signal) {
        onAbort = () => resolve(false)
        if (signal.aborted) onAbort()
        else signal.addEventListener('abort', onAbort, { once: true })
      }
    })
    clearTimeout(timer)
    if (onAbort) signal!.removeEventListener('abort', onAbort)
    const i = this.waiters.indexOf(waiter)
    if (i >= 0) this.waiters.splice(i, 1)
    // Like threading's Condition: the lock is taken back before wait returns, also on abort. A
    // notify that came first stands (too late to cancel): it is not lost to the other waiters.
    await this.lock.restore(client, depth)
    if (!notified) signal?.throwIfAborted()
    return notified
  }

  notify(client: ClientRef, n = 1): void {
    if (!this.lock.owns(client)) throw new RuntimeError('cannot notify on un-acquired lock')
    for (const w of this.waiters.splice(0, Math.max(0, n))) w.wake()
  }
  notifyAll(client: ClientRef): void {
    this.notify(client, this.waiters.length)
  }
  toString(): string {
    return `AioCondition(${String(this.lock)}, waiters=${this.waiters.length})`
  }
}

/** Owner-aware types: every method gets the client first. */
function ownedType(typeid: string, create: (args: unknown[]) => unknown, methods: Record<string, number>): HostedType {
  return {
    create,
    async call(obj, method, args, signal, client, id) {
      if (!Object.hasOwn(methods, method)) refuse(typeid, method)
      const padded = exactly(args, methods[method])
      const result = await (obj as Record<string, (...a: unknown[]) => unknown>)[method](client, ...padded, signal)
      if (method === 'acquire' && result === true) hold(client, id, 1)
      else if (method === 'release') hold(client, id, -1)
      return result
    },
    release: (obj, client) => (obj as { release(c: ClientRef): void }).release(client),
  }
}

/** Python's dict, as a Map: keys may be any serializable value. */
export class HostedDict {
  readonly map: Map<unknown, unknown>
  constructor(init?: unknown) {
    this.map = new Map(init instanceof Map ? init : init && typeof init === 'object' ? Object.entries(init) : [])
  }
  get(key: unknown, fallback?: unknown): unknown {
    return this.map.has(key) ? this.map.get(key) : fallback
  }
  getitem(key: unknown): unknown {
    if (!this.map.has(key)) throw keyError(key)
    return this.map.get(key)
  }
  set(key: unknown, value: unknown): void {
    this.map.set(key, value)
  }
  delete(key: unknown): void {
    if (!this.map.delete(key)) throw keyError(key)
  }
  has(key: unknown): boolean {
    return this.map.has(key)
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
  }
  pop(key: unknown, ...fallback: unknown[]): unknown {
    if (this.map.has(key)) {
      const v = this.map.get(key)
      this.map.delete(key)
      return v
    }
    if (fallback.length && fallback[0] !== undefined) return fallback[0]
    throw keyError(key)
  }
  popitem(): [unknown, unknown] {
    const last = [...this.map.entries()].pop()
    if (!last) throw keyError('popitem(): dictionary is empty')
    this.map.delete(last[0])
    return last
  }
  setdefault(key: unknown, value?: unknown): unknown {
    if (!this.map.has(key)) this.map.set(key, value ?? null)
    return this.map.get(key)
  }
  update(other: unknown): void {
    for (const [k, v] of other instanceof Map ? other : Object.entries(other as object)) this.map.set(k, v)
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
    this.items.push(...vs)
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

export const DICT_METHODS = ['get', 'getitem', 'set', 'delete', 'has', 'keys', 'values', 'items', 'len', 'clear', 'pop', 'popitem', 'setdefault', 'update', 'copy'] as const
export const LIST_METHODS = ['get', 'set', 'append', 'extend', 'insert', 'pop', 'remove', 'index', 'count', 'sort', 'reverse', 'len', 'slice', 'toArray', 'clear'] as const
export const NAMESPACE_METHODS = ['getattr', 'setattr', 'delattr', 'hasattr', 'names'] as const

/**
 * Every type a server can host. The generated proxy modules add the spec's classes (a user's own
 * too) with registerHostedType(); the owner-aware and container types are here.
 */
export const HOSTED: Record<string, HostedType> = {
  RLock: ownedType('RLock', () => new HostedRLock(), { acquire: 2, release: 0 }),
  Condition: ownedType('Condition', (args) => new HostedCondition(args[0]), { acquire: 2, release: 0, wait: 1, notify: 1, notifyAll: 0 }),
  dict: containerType('dict', (args) => new HostedDict(args[0]), DICT_METHODS),
  list: containerType('list', (args) => new HostedList(args[0] as Iterable<unknown>), LIST_METHODS),
  Namespace: containerType('Namespace', (args) => new HostedNamespace(args[0] as Record<string, unknown>), NAMESPACE_METHODS),
}

/** Called by each generated proxy module: the server can host this class. */
export function registerHostedType(typeid: string, spec: HostedSpec): void {
  HOSTED[typeid] ??= specType(typeid, spec)
}
