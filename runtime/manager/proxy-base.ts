// What every proxy class shares (the generated ones and the containers'): its core, Python's
// _callmethod, str() as the referent's text, and the record it travels as.

import { inspect } from 'node:util'
import type { ProxyCore } from './proxy.js'
import { CORE, REDUCE, type Reduced } from '../core/transfer.js'
import type { CoroOptions } from '../core/wait.js'

// A symbol, not a #private field: Namespace and Auto proxies are JS Proxies, and a private field
// cannot be read through one.
const CORE_OF: unique symbol = Symbol('aioprocessing.proxyCore')

export abstract class BaseProxy {
  /** The module that defines the class, so that a thread or process that has not loaded it can. */
  static readonly module: string | undefined = undefined
  /**
   * The name it travels under (`__aio__`), which the receiver's registerType() was given. Not
   * `constructor.name`: bundlers rename classes (esbuild writes `var AioLockProxy = class
   * _AioLockProxy`), and the receiver may be bundled otherwise or not at all. A subclass without
   * one travels under its class's name.
   */
  static readonly tag: string | undefined = undefined
  private readonly [CORE_OF]: ProxyCore

  /** Proxies come from a context or a manager (ctx.AioLock(), manager.Lock()); a generated subclass wraps a core with it. */
  constructor(core: ProxyCore) {
    this[CORE_OF] = core
  }

  /** The proxy core, for generated subclasses (`aioprocessing/extend`). */
  get [CORE](): ProxyCore {
    return this[CORE_OF]
  }

  /** Python's `_callmethod`: calls a method of the referent by name; the server refuses one the type does not expose. */
  callMethod(method: string, args: unknown[] = []): unknown {
    return this[CORE_OF].call(method, args)
  }

  /** Awaitable twin of callMethod. */
  coro_callMethod(method: string, args: unknown[] = [], { signal }: CoroOptions = {}): Promise<unknown> {
    return this[CORE_OF].coro_call(method, args, signal)
  }

  /** The referent's text, as Python's str(proxy) (a call to the server). */
  toString(): string {
    return this[CORE_OF].describe()
  }

  [inspect.custom](): string {
    return `${tagOf(this)}(${this[CORE_OF].describe()})`
  }

  /** A proxy travels as its address and id, to a thread or a spawned process. @internal */
  [REDUCE](): Reduced {
    return { __aio__: tagOf(this), state: this[CORE_OF].reduce(), module: (this.constructor as typeof BaseProxy).module, portable: true }
  }
}

function tagOf(proxy: BaseProxy): string {
  return (proxy.constructor as typeof BaseProxy).tag ?? proxy.constructor.name
}
