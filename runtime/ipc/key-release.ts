// Sends OP_GONE for a process that ended (gone.ts): nothing is awaited or reported, as a server
// that is gone holds nothing. Built alone (build/bundle.mjs), loaded by URL; its OP_GONE is the
// manager's wire's (manager/protocol.ts imports it from here, below its layer).

import net from 'node:net'
import type { KeyServer } from '../core/destination.js'
import { encodeAside } from './serialize.js'
import { FramedSocket } from './framed-socket.js'
import { keyBytes } from './auth.js'

/** No answer; client `key` has ended: what its proxies held goes once it has no connection (manager-server.ts). */
export const OP_GONE = 13

/** How long a server has to take the handshake (ms): one that does not keeps what it counted. */
const RELEASE_HANDSHAKE_MS = 10_000

export function sendGone(key: string, servers: readonly KeyServer[]): void {
  for (const { address, authkey } of servers) {
    const socket = typeof address === 'string' ? net.connect(address) : net.connect(address[1], address[0])
    socket.unref()
    const framed = new FramedSocket(socket, {
      role: 'client',
      authkey: keyBytes(authkey),
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
