// A process ended: the references its arguments' proxies were counted for (core/destination.ts)
// go, at each manager server they are of. Its supervisor, which saw it end, says so: a process
// killed before it connected to a server would otherwise hold them for ever. Here, below the
// manager's layer, because a supervisor sends it: one request on a connection of its own,
// `[0, OP_GONE, key]` in the manager's wire (manager/protocol.ts).
//
// The sending (key-release.ts) is a file of its own, built alone and loaded by URL on a first
// release: a supervisor's boot is on the way of a first process pool, and the handshake's
// node:crypto alone costs a fresh thread ~2 ms.

import type { KeyServer } from '../core/destination.js'

const SENDER = new URL('./key-release.js', import.meta.url).href

/** Tells each server a process's arguments' proxies were counted at (its ProcessData's clientKey and keyServers) that it has ended. */
export function releaseClientKey({ clientKey, keyServers }: { clientKey?: string; keyServers?: readonly KeyServer[] }): void {
  if (clientKey === undefined || !keyServers?.length) return
  void import(SENDER).then((m: typeof import('./key-release.js')) => m.sendGone(clientKey, keyServers)).catch(() => {})
}
