// A process ended: the references its arguments' proxies were counted for (core/destination.ts)
// go, at each manager server they are of. Its supervisor, which saw it end, says so: a process
// killed before it connected to a server would otherwise hold them for ever. Here, below the
// manager's layer, because a supervisor loads it (process/supervisor-thread.ts): one request on a
// connection of its own, `[0, OP_GONE, key]` in the manager's wire (manager/protocol.ts).

import net from 'node:net'
import type { KeyServer } from '../core/destination.js'
import { encodeAside } from './serialize.js'
import { FramedSocket } from './framed-socket.js'

/** No answer; client `key` has ended: what its proxies held goes once it has no connection (manager-server.ts). */
export const OP_GONE = 13

/** How long a server has to take the handshake (ms): one that does not keeps what it counted. */
const RELEASE_HANDSHAKE_MS = 10_000

/**
 * Tells each server a process's arguments' proxies were counted at (ProcessData's clientKey and
 * keyServers) that it has ended; nothing is awaited or reported (a server that is gone holds nothing).
 */
export function releaseClientKey({ clientKey: key, keyServers }: { clientKey?: string; keyServers?: readonly KeyServer[] }): void {
  if (key === undefined) return
  for (const { address, authkey } of keyServers ?? []) {
    const socket = typeof address === 'string' ? net.connect(address) : net.connect(address[1], address[0])
    socket.unref()
    const framed = new FramedSocket(socket, {
      role: 'client',
      authkey: authkey === null ? null : Buffer.from(authkey, 'hex'),
      handshakeMs: RELEASE_HANDSHAKE_MS,
      message: () => {},
      ready: () => {
        framed.send(encodeAside([0, OP_GONE, key]))
        socket.end()
      },
      ended: () => void socket.destroy(),
    })
  }
}
