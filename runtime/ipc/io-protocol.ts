// The wire between a thread and its process's I/O thread (sockets.ts ⇄ io-thread.ts): the messages
// and the words of an operation's status buffer. Both ends import this module, neither the other,
// so that the I/O thread loads no more than it runs.

/** ['host', port] (TCP) or a filesystem path (Unix socket), as in Python. */
export type Address = string | readonly [string, number]

export type IoMessage =
  | { op: 'listen'; id: number; address: Address; backlog: number; status: SharedArrayBuffer; authkey: Uint8Array | null; maxMessageSize: number }
  | { op: 'offer'; id: number; status: SharedArrayBuffer; rx: SharedArrayBuffer; tx: SharedArrayBuffer }
  | { op: 'connect'; address: Address; status: SharedArrayBuffer; rx: SharedArrayBuffer; tx: SharedArrayBuffer; authkey: Uint8Array | null; maxMessageSize: number }
  // A connection whose socket the caller reads and writes itself (its fd, in PORT), after the handshake.
  | { op: 'connectDetached'; address: Address; status: SharedArrayBuffer; authkey: Uint8Array | null }
  | { op: 'closeDetached'; fd: number }
  | { op: 'closeListener'; id: number }
  | { op: 'exitWithParent'; fd: number }

// An operation's status buffer (listen, offer, connect):
// word  name    meaning
// 0     STATUS  WAITING → CONNECTED_PENDING (a socket, its handshake under way) → CONNECTED | ERROR;
//               WITHDRAWN: the caller gave up (from WAITING or CONNECTED_PENDING)
// 1     PORT    the bound or remote port
// 2     TEXT    byte length of the text from byte 16: the peer, or the error's message
// 3     KIND    ERROR_KIND: which error ERROR stands for
export const STATUS = { WAITING: 0, CONNECTED_PENDING: 1, CONNECTED: 2, ERROR: 3, WITHDRAWN: 4 } as const
export const ERROR_KIND = { OS: 0, AUTHENTICATION: 1, EOF: 2 } as const
