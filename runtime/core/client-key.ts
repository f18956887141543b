// A new client key: what a proxy's channel announces to its servers (OP_HELLO), and what a
// process's arguments are counted for (destination.ts). Apart from that module, which every
// thread loads: node:crypto costs a fresh thread ~2 ms, and only a starter or a proxy needs it.

import { randomBytes } from 'node:crypto'

export function newClientKey(): string {
  return randomBytes(16).toString('hex')
}
