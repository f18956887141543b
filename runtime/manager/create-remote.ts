// Objects created on a manager server (an AioManager's, the spawn context's broker): apart from
// proxy.ts, as a function among the arguments (a barrier's action) crosses as its source, and the
// code that checks a function's source is not for a spawned process, which only calls proxies
// (it loads the library's portable part: generated/portable.generated.ts).
import { functionSource } from '../core/function-source.js'
import { OP_CREATE, type ProxyState } from './protocol.js'
import { ProxyCore, channelTo, wrapProxy } from './proxy.js'

/** Constructor arguments: a function (a barrier's action) crosses as its source, as to a thread. */
function creationArgs(args: unknown[]): unknown[] {
  return args.map((a, i) => (typeof a === 'function' ? { __function__: functionSource(`argument ${i}`, a as (...x: unknown[]) => unknown, { argsOrModule: false }) } : a))
}

/** Creates an object on a server; returns its proxy. */
export function createRemote(address: ProxyState['address'], authkey: string | null, typeid: string, args: unknown[]): unknown {
  const r = channelTo(address, authkey).call([0, OP_CREATE, typeid, creationArgs(args)]) as { id: number; typeid: string }
  return wrapProxy(ProxyCore.created({ address, authkey, id: r.id, typeid: r.typeid }))
}

/** createRemote(), awaited. */
export async function coroCreateRemote(address: ProxyState['address'], authkey: string | null, typeid: string, args: unknown[], signal?: AbortSignal): Promise<unknown> {
  const r = (await channelTo(address, authkey).coro_call([0, OP_CREATE, typeid, creationArgs(args)], signal)) as { id: number; typeid: string }
  return wrapProxy(ProxyCore.created({ address, authkey, id: r.id, typeid: r.typeid }))
}
