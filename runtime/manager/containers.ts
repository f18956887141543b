// Proxies of the manager's containers (Python's DictProxy, ListProxy, NamespaceProxy) and of
// registered user types (AutoProxy). Each method is a call to the server; each has a coro_ twin
// whose last argument may be `{ signal }`.

import { ProxyCore, PROXY_CLASSES, wrapProxy } from './proxy.js'
import { CORE, registerType, registerWrapper } from '../core/transfer.js'
import { BaseProxy } from './proxy-base.js'
import { DICT_METHODS, LIST_METHODS, NAMESPACE_METHODS } from './protocol.js'
import type { CoroOptions } from '../core/wait.js'

/** Parameter counts, so that a coro_ twin finds its `{ signal }` after them. */
const ARITY: Record<string, number> = {
  get: 2, getitem: 1, set: 2, delete: 1, has: 1, keys: 0, values: 0, items: 0, len: 0, clear: 0, pop: 2, popitem: 0, setdefault: 2, update: 1, copy: 0,
  append: 1, extend: 1, insert: 2, remove: 1, index: 1, count: 1, sort: 1, reverse: 0, slice: 2, toArray: 0,
  getattr: 1, setattr: 2, delattr: 1, hasattr: 1, names: 0,
}

function install(cls: { prototype: object }, methods: readonly string[]): void {
  for (const name of methods) {
    const arity = ARITY[name]
    Object.defineProperty(cls.prototype, name, {
      value(this: BaseProxy, ...args: unknown[]) {
        return this[CORE].call(name, args)
      },
    })
    Object.defineProperty(cls.prototype, `coro_${name}`, {
      value(this: BaseProxy, ...args: unknown[]) {
        const options = (args.length > arity ? args[arity] : {}) as CoroOptions
        return this[CORE].coro_call(name, args.slice(0, arity), options?.signal)
      },
    })
  }
}

type Twins<T> = { [K in keyof T]: T[K] } & { [K in keyof T as `coro_${K & string}`]: T[K] extends (...a: infer A) => infer R ? (...a: [...A, CoroOptions?]) => Promise<R> : never }

interface DictMethods<K, V> {
  /** The value at `key`, or `fallback` (default undefined) when there is none. */
  get(key: K, fallback?: V): V | undefined
  /** Python's `d[key]`: throws KeyError when there is no such key. */
  getitem(key: K): V
  set(key: K, value: V): void
  /** Python's `del d[key]`: throws KeyError when there is no such key. */
  delete(key: K): void
  has(key: K): boolean
  keys(): K[]
  values(): V[]
  items(): [K, V][]
  len(): number
  clear(): void
  pop(key: K, fallback?: V): V
  popitem(): [K, V]
  setdefault(key: K, value?: V): V
  update(other: Map<K, V> | Record<string, V>): void
  /** A plain copy (a Map). */
  copy(): Map<K, V>
}
/** Python's DictProxy (`manager.dict()`): keys may be any serializable value; values are copies. */
export interface AioDictProxy<K = unknown, V = unknown> extends Twins<DictMethods<K, V>> {}
export class AioDictProxy<K = unknown, V = unknown> extends BaseProxy {
  static override readonly module = import.meta.url
  static override readonly tag: string = 'AioDictProxy'
}
install(AioDictProxy, DICT_METHODS)

interface ListMethods<T> {
  get(index: number): T
  set(index: number, value: T): void
  append(value: T): void
  extend(values: T[]): void
  insert(index: number, value: T): void
  pop(index?: number): T
  remove(value: T): void
  index(value: T): number
  count(value: T): number
  sort(reverse?: boolean): void
  reverse(): void
  len(): number
  slice(start?: number, end?: number): T[]
  toArray(): T[]
  clear(): void
}
/** Python's ListProxy (`manager.list()`). */
export interface AioListProxy<T = unknown> extends Twins<ListMethods<T>> {}
export class AioListProxy<T = unknown> extends BaseProxy {
  static override readonly module = import.meta.url
  static override readonly tag: string = 'AioListProxy'
}
install(AioListProxy, LIST_METHODS)

interface NamespaceMethods {
  getattr(name: string): unknown
  setattr(name: string, value: unknown): void
  delattr(name: string): void
  hasattr(name: string): boolean
  names(): string[]
}
/**
 * Python's NamespaceProxy (`manager.Namespace()`): `ns.x = 1`, `ns.x`, `delete ns.x`, `'x' in ns`
 * are calls to the server (a missing attribute throws AttributeError); names starting with `_`
 * stay on the proxy, as in Python. `getattr`/`setattr` and their coro_ twins do the same explicitly.
 */
export interface AioNamespaceProxy extends Twins<NamespaceMethods> {
  [attribute: string]: unknown
}
export class AioNamespaceProxy extends BaseProxy {
  static override readonly module = import.meta.url
  static override readonly tag: string = 'AioNamespaceProxy'
  constructor(core: ProxyCore) {
    super(core)
    // 'then' stays local too: promise resolution looks for it on every value.
    const own = (k: string | symbol) => typeof k === 'symbol' || k.startsWith('_') || k in AioNamespaceProxy.prototype || k === 'constructor' || k === 'then'
    // eslint-disable-next-line no-constructor-return
    return new Proxy(this, {
      get: (target, k, receiver) => (own(k) ? Reflect.get(target, k, receiver) : target.getattr(k as string)),
      set: (target, k, v, receiver) => (own(k) ? Reflect.set(target, k, v, receiver) : (target.setattr(k as string, v), true)),
      deleteProperty: (target, k) => (own(k) ? Reflect.deleteProperty(target, k) : (target.delattr(k as string), true)),
      has: (target, k) => (own(k) ? Reflect.has(target, k) : target.hasattr(k as string)),
    })
  }
}
install(AioNamespaceProxy, NAMESPACE_METHODS)

/**
 * Python's AutoProxy, for types registered with `manager.register()`: `proxy.method(...args)`
 * and `await proxy.coro_method(...args)` call the referent's public methods.
 */
export interface AioAutoProxy {
  [method: string]: (...args: any[]) => any
}
export class AioAutoProxy extends BaseProxy {
  static override readonly module = import.meta.url
  static override readonly tag: string = 'AioAutoProxy'
  constructor(core: ProxyCore) {
    super(core)
    // eslint-disable-next-line no-constructor-return
    return new Proxy(this, {
      get: (target, k, receiver) => {
        // Names starting with '_' are not methods, as Python's AutoProxy exposes public ones only:
        // code that probes a value (`value.__proxy__`) got a method caller, and took it for a record.
        if (typeof k === 'symbol' || k in target || k === 'then' || k.startsWith('_')) return Reflect.get(target, k, receiver)
        if (k.startsWith('coro_')) return (...args: unknown[]) => target.coro_callMethod(k.slice(5), args)
        return (...args: unknown[]) => target.callMethod(k, args)
      },
    })
  }
}

for (const [typeid, cls] of [['dict', AioDictProxy], ['list', AioListProxy], ['Namespace', AioNamespaceProxy], ['*', AioAutoProxy]] as const) {
  PROXY_CLASSES.set(typeid, cls as unknown as new (core: ProxyCore) => unknown)
}
for (const cls of [AioDictProxy, AioListProxy, AioNamespaceProxy, AioAutoProxy]) {
  registerType(cls.tag, (state) => (ProxyCore.referent(state as never) as object | undefined) ?? wrapProxy(ProxyCore.rebuild(state as never)))
}
registerWrapper(ProxyCore, (core) => wrapProxy(core))
export { AioAutoProxy as AutoProxy }
