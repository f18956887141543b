// The runtime names the package exports beside the generated classes.
export * from '../core/errors.js'
export { currentProcess, type CurrentProcess } from '../core/current.js'
export type { Timeout } from '../core/args.js'
export type { CoroOptions } from '../core/wait.js'
export type { ProcessOptions, Target } from '../process/process.js'
export type { QueueOptions } from '../ipc/queue.js'
export type { ContextOptions } from './context-options.js'
export type { PoolOptions, PoolFunction, AsyncOptions } from '../pool/pool.js'
export { RemoteTraceback } from '../core/remote-error.js'

import { pipeEnds, type Connection, type PipeOptions } from '../ipc/connection.js'
export type { PipeOptions, Serializer } from '../ipc/connection.js'

/**
 * The generated classes these functions hand out. The generated index fills it in (a module
 * augmentation), so that the runtime names the public class without importing generated/.
 */
export interface PublicClasses {}
type AioConnection = PublicClasses extends { AioConnection: infer C } ? C : Connection

/**
 * Python's `Pipe(duplex = true)`: two connected AioConnections over shared memory, usable from any
 * threads they are passed to. With `duplex = false` the first only receives and the second only sends.
 * `{ serializer: 'pickle' }` makes send()/recv() speak Python's pickle (see AioClient).
 */
export function AioPipe(duplex = true, options: PipeOptions = {}): [AioConnection, AioConnection] {
  return pipeEnds<AioConnection>(duplex, options)
}

import { blockOn, coroBlockOn, coroBlockOnAny, park, type CoroOptions, type Waiter } from '../core/wait.js'
import { connectAttempt, connectBegin, waitAnyAttempt, waitReadyAttempt, type SocketOptions } from '../ipc/sockets.js'
import { coreOf } from '../core/transfer.js'
import { ConnectionCore } from '../ipc/connection.js'
import { checkSignal, deadlineOf, type Timeout } from '../core/args.js'
import { OSError, ValueError } from '../core/errors.js'
export type { Address, SocketOptions, ListenerOptions } from '../ipc/sockets.js'

/**
 * Python's `Client(address, family, authkey)`: connects to an AioListener (or a Python
 * `multiprocessing.connection.Listener`), runs the authkey handshake when `authkey` is given, and
 * returns the connection. It blocks the calling thread; `AioClient.coro` is the awaitable form.
 * @throws {@link AuthenticationError} when the keys differ; `OSError` when nothing listens there.
 */
export function AioClient(address: readonly [string, number] | string, options: SocketOptions = {}): AioConnection {
  const st = connectBegin(address, options)
  return blockOn<AioConnection>(st, () => connectAttempt<AioConnection>(st), Infinity, () => st.expire() as never, true)
}

/** The awaitable form of {@link AioClient}; `signal` aborts it (the half-made connection is dropped). */
AioClient.coro = async function coroClient(address: readonly [string, number] | string, options: SocketOptions = {}, { signal }: CoroOptions = {}): Promise<AioConnection> {
  checkSignal(signal)
  const st = connectBegin(address, options)
  return coroBlockOn<AioConnection>(st, () => connectAttempt<AioConnection>(st), Infinity, () => st.expire() as never, signal, true)
}

function waitArgs(connections: readonly AioConnection[]): ConnectionCore[] {
  if (!Array.isArray(connections)) throw new TypeError('connections must be an array of AioConnection')
  return connections.map((c, i) => {
    const core = coreOf<ConnectionCore>(`connections[${i}]`, c, [ConnectionCore], 'an AioConnection')
    // As Python's wait(), which asks each connection for its fd: a closed one raises (it returned [] here, as if nothing came).
    if (core.closed) throw new OSError(`handle is closed (connections[${i}])`)
    // Python's selector refuses a connection registered twice (KeyError).
    const first = connections.indexOf(c)
    if (first !== i) throw new ValueError(`connections[${i}] is connections[${first}] again: a connection may be waited on once (Python's wait() raises KeyError)`)
    return core
  })
}

/**
 * A wait on connections none of which can receive (send-only ends, or none at all) sleeps out its
 * timeout, as Python's select() on no readable fd does, and returns []: a waiter on a word of its
 * own that nothing changes. It returned [] at once, so a loop around it spun.
 */
function nothingToRead(): Waiter {
  return { i32: new Int32Array(new SharedArrayBuffer(4)), waitIndex: 0, waitValue: 0 }
}

/**
 * Python's `multiprocessing.connection.wait(object_list, timeout)`: the connections that have
 * something to read (or whose peer closed), waiting up to `timeout` ms for one; [] on timeout.
 */
export function wait(connections: readonly AioConnection[], timeout: Timeout = null): AioConnection[] {
  const cores = waitArgs(connections)
  const deadline = deadlineOf('timeout', timeout)
  if (!cores.some((c) => c.rx !== null)) {
    const none = nothingToRead()
    return blockOn(none, () => park(none, none.i32, 0, 0), deadline, () => [])
  }
  const w: Waiter = { i32: new Int32Array(1), waitIndex: 0, waitValue: 0 }
  const look = { ms: 0 }
  return blockOn(w, () => waitReadyAttempt(connections, cores, [w], look), deadline, () => [])
}

/** The awaitable form of {@link wait}. */
export async function coro_wait(connections: readonly AioConnection[], timeout: Timeout = null, { signal }: CoroOptions = {}): Promise<AioConnection[]> {
  checkSignal(signal)
  const cores = waitArgs(connections)
  const deadline = deadlineOf('timeout', timeout)
  if (!cores.some((c) => c.rx !== null)) {
    const none = nothingToRead()
    return coroBlockOn<AioConnection[]>(none, () => park(none, none.i32, 0, 0), deadline, () => [], signal)
  }
  // One waiter per connection that reads: the call wakes as soon as any of them has something.
  const ws: Waiter[] = cores.filter((c) => c.rx !== null).map(() => ({ i32: new Int32Array(1), waitIndex: 0, waitValue: 0 }))
  return coroBlockOnAny(ws, () => waitAnyAttempt(connections, cores, ws), deadline, () => [], signal)
}

export { AioDictProxy, AioListProxy, AioNamespaceProxy, AioAutoProxy } from '../manager/containers.js'
export type { ManagerOptions } from '../manager/manager.js'

/** Python's pickle (`pickle.dumps`, `pickle.loads`, `pickle.tuple(...)`), as the 'pickle' serializer uses it. */
export * as pickle from '../ipc/pickle.js'
export { PyTuple, PyObject, PyGlobal, PyFrozenSet, PyByteArray, PyFloat, type PickleOptions, type UnpickleOptions } from '../ipc/pickle.js'
