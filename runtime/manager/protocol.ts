// The proxy ⇄ manager wire, imported by both ends (proxy.ts, manager-server.ts); neither end
// imports the other for it. Each frame is one message in the library's serializer, carried by
// ipc/framed-socket.ts (CPython's framing, after its authkey handshake).
//
// A request is a tuple `[callId, op, ...]`, an answer `[callId, ok, value]`; the tuple types
// below name every field, so both ends read them by name and the compiler checks each use. A
// proxy builds a request with callId 0; its channel numbers it when it sends it.

import { OP_GONE } from '../ipc/key-release.js'
import { keyBytes } from '../ipc/auth.js'
import { REBUILDER } from '../core/destination.js'

export const OP_CREATE = 0
export const OP_CALL = 1
export const OP_CANCEL = 2
export const OP_SHUTDOWN = 3
export const OP_DESCRIBE = 4
/** OP_DESCRIBE of object 0, the server itself, answers this and its process's pid. */
export const SERVER_ITSELF = 'aioprocessing manager server, pid'
export const OP_HELLO = 5
export const OP_DECREF = 6
export const OP_ACK = 7
export const OP_INCREF = 8
export const OP_ADOPT = 9
export const OP_SYNC = 10
export const OP_PUBLISH = 11
export const OP_PUT_BACK = 12
/** Sent by a supervisor whose process ended: defined below this layer, where it is sent from (ipc/key-release.ts). */
export { OP_GONE }

export type Request =
  | [callId: number, op: typeof OP_CREATE, typeid: string, args: unknown[]] // → objectId
  | [callId: number, op: typeof OP_CALL, objectId: number, method: string, args: unknown[]] // → result
  | [callId: number, op: typeof OP_CANCEL, cancelled: number] // no answer of its own
  | [callId: number, op: typeof OP_SHUTDOWN] // → undefined, then the server stops
  | [callId: number, op: typeof OP_DESCRIBE, objectId: number] // → the referent's toString()
  | [callId: number, op: typeof OP_HELLO, clientKey: string] // no answer; the connection belongs to that client
  | [callId: number, op: typeof OP_DECREF, objectId: number] // no answer; a created object's proxy was collected
  | [callId: number, op: typeof OP_ACK, acked: number] // no answer; the answer to call `acked` reached its caller
  | [callId: number, op: typeof OP_INCREF, objectId: number, to?: string] // no answer; a proxy was sent on: one more reference, owned by nobody yet, or by client `to` (a process's arguments: core/destination.ts)
  | [callId: number, op: typeof OP_ADOPT, objectId: number] // no answer; a proxy sent on was rebuilt here: this client owns that reference
  | [callId: number, op: typeof OP_SYNC] // → { request, answer }: FIFO paths of a fast lane for this client's blocking calls (sync-pipe.ts), or null
  | [callId: number, op: typeof OP_PUBLISH, name: string, objectId: number] // → undefined; create(name) now gives that object
  | [callId: number, op: typeof OP_PUT_BACK, answered: number] // no answer; the answer to call `answered` could not be read here: what it took goes back
  | [callId: number, op: typeof OP_GONE, clientKey: string] // no answer; that client (a process) ended: what it owns goes once it has no connection

/**
 * `ok` false: `value` is an ErrorRecord (core/remote-error.ts). `ack` true: the call took
 * something (a queue's get) that the server puts back unless the client acknowledges the answer
 * (OP_ACK) before its connection ends — so a client killed before its call returned loses nothing —
 * or asks for it back at once (OP_PUT_BACK: the answer holds an object this client cannot rebuild).
 */
export type Answer = [callId: number, ok: boolean, value: unknown, ack?: boolean]

/** A proxy record's authkey as the handshake takes it: ipc/auth.ts, where OP_GONE's sender takes it too. */
export { keyBytes }

/** What a proxy record holds: enough to reach the referent from any process. */
export interface ProxyState {
  address: string | [string, number]
  authkey: string | null
  id: number
  typeid: string
  /** The client key it was counted for, when sent as a process's argument (core/destination.ts): that client need not adopt it. */
  to?: string
}

export function sameAddress(a: ProxyState['address'], b: ProxyState['address']): boolean {
  return typeof a === 'string' ? a === b : Array.isArray(b) && a[0] === b[0] && a[1] === b[1]
}

/** The server of this thread, so that proxies of its own objects rebuild as the objects themselves. */
let local: { readonly address: ProxyState['address']; referent(id: number): unknown; incref(id: number, to?: string): void; release(id: number): void } | undefined

export function setLocalServer(server: typeof local): void {
  local = server
}
export function isLocalServer(server: object): boolean {
  return local === server
}

/** This thread's server, when `state` names one of its objects. */
function ownServer(state: ProxyState): typeof local {
  return local !== undefined && sameAddress(local.address, state.address) ? local : undefined
}

/** Counts a reference sent on from the server's own thread (for client `to`, if known); false when the server is elsewhere. */
export function increfLocal(state: ProxyState, to?: string): boolean {
  const server = ownServer(state)
  server?.incref(state.id, to)
  return server !== undefined
}

/**
 * A proxy record of one of this thread's server's objects, rebuilt here: the object itself, and
 * the reference the record carried (its sender's OP_INCREF) is let go, since no proxy here takes
 * it over. Whatever holds the object now (a dict's entry, a list's) keeps it alive as long as it
 * holds it, and hands it out as a proxy again (the server hosts it anew if every proxy had gone):
 * counted, the reference outlived the entry, and the object its server.
 */
export function localReferent(state: ProxyState): unknown {
  const obj = ownServer(state)?.referent(state.id)
  // A pool task's record carried none (core/destination.ts REBUILDER).
  if (obj !== undefined && state.to !== REBUILDER) local!.release(state.id)
  return obj
}

/** Lets go of the reference a record of this thread's server's object carried, one not rebuilt (its class is not loaded here); false when the server is elsewhere. */
export function releaseLocal(state: ProxyState): boolean {
  const server = ownServer(state)
  if (state.to !== REBUILDER) server?.release(state.id)
  return server !== undefined
}

// What a container's proxy may call (containers.ts), and its server lets it (manager-types.ts):
// here, not beside the server's containers, so that a spawned process loads none of those.
export const DICT_METHODS = ['get', 'getitem', 'set', 'delete', 'has', 'keys', 'values', 'items', 'len', 'clear', 'pop', 'popitem', 'setdefault', 'update', 'copy'] as const
export const LIST_METHODS = ['get', 'set', 'append', 'extend', 'insert', 'pop', 'remove', 'index', 'count', 'sort', 'reverse', 'len', 'slice', 'toArray', 'clear'] as const
export const NAMESPACE_METHODS = ['getattr', 'setattr', 'delattr', 'hasattr', 'names'] as const
