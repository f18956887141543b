// A proxy class of a user's own for the manager typeid 'Counter' (targets.ts Counter), in a
// module that a test's own thread does not import: a thread that reads one out of a manager's
// queue or dict has not loaded its class.
import { BaseProxy, CORE, PROXY_CLASSES, ProxyCore, registerType, registerWrapper, wrapProxy } from 'aioprocessing/extend'

export class CounterProxy extends BaseProxy {
  static override readonly module: string | undefined = import.meta.url
  static override readonly tag: string | undefined = 'CounterProxy'
  add(n: number): void {
    this[CORE].call('add', [n])
  }
  total(): number {
    return this[CORE].call('total', []) as number
  }
}

/**
 * One whose record names a module that does not exist, and whose type only putCounter's thread
 * registers (not this module, which a server may load for CounterProxy): nowhere else can
 * rebuild it.
 */
export class LostProxy extends CounterProxy {
  static override readonly module: string | undefined = new URL('./no-such-module.js', import.meta.url).href
  static override readonly tag: string | undefined = 'LostProxy'
}

registerType('CounterProxy', (state) => (ProxyCore.referent(state) as CounterProxy | undefined) ?? new CounterProxy(ProxyCore.rebuild(state as never)))
registerWrapper(ProxyCore, (core) => wrapProxy(core))
PROXY_CLASSES.set('Counter', CounterProxy as unknown as new (core: ProxyCore) => unknown)

type Auto = { [CORE]: ProxyCore }
type Sink = { put(item: unknown): void }
type Dict = { set(key: string, value: unknown): void }

/**
 * A process target: wraps `counter` (an AutoProxy where it was made) as a CounterProxy and puts
 * it in `q` and `d`; then tries to put a LostProxy, whose module the server cannot import, and
 * records that error in `d` ('lost'), then shows the connection still works (`q.put('after')`).
 */
export function putCounter(counter: Auto, q: Sink, d: Dict): void {
  registerType('LostProxy', (state) => (ProxyCore.referent(state) as LostProxy | undefined) ?? new LostProxy(ProxyCore.rebuild(state as never)))
  const mine = new CounterProxy(counter[CORE])
  q.put(mine)
  d.set('c', mine)
  try {
    q.put(new LostProxy(counter[CORE]))
    d.set('lost', 'the put succeeded')
  } catch (error) {
    d.set('lost', `${(error as Error).name}: ${(error as Error).message}`)
  }
  q.put('after')
}

/** A process target: puts `counter` in `d` under 'c', as a CounterProxy. */
export function setCounter(counter: Auto, d: Dict): void {
  d.set('c', new CounterProxy(counter[CORE]))
}

// With AIO_TEST_GC and --expose-gc: every thread and process that loads this module (a manager's
// server too, given the module) collects often, so that collected proxies tell their servers.
if (process.env.AIO_TEST_GC && typeof globalThis.gc === 'function') setInterval(() => globalThis.gc!(), 100).unref()
