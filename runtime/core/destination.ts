// Whom a manager proxy is sent to, when that is known: a process's arguments. A proxy sent on
// counts one more reference at its server before its receiver can have it; a receiver that rebuilt
// it took that reference over (OP_ADOPT). One that never did (a process killed before it loaded)
// left the reference counted for nobody, for ever: its object lived on, and a pipe end of the spawn
// context never closed, so its peer read no EOF. A process's arguments are counted for the client
// key its first thread will use, given to it by its starter: its server releases them when that
// client's last connection ends, or, if it never connected, when its supervisor reports it gone
// (ipc/gone.ts).
//
// Every thread's first module imports this one (to take its key): it imports no other, node:crypto
// least of all, which costs a fresh thread ~2 ms to load (core/client-key.ts makes the keys).

/** A manager server as a proxy record names it. */
export interface KeyServer {
  address: string | [string, number]
  authkey: string | null
}

let reducing: { key: string; servers: Map<string, KeyServer> } | undefined

/**
 * Runs `reduce` (a reduction of a process's arguments) with every proxy it sends counted for client
 * `key`; returns its value and the servers those proxies are of.
 */
export function reduceFor<T>(key: string, reduce: () => T): { value: T; servers: KeyServer[] } {
  const outer = reducing
  reducing = { key, servers: new Map() }
  try {
    const value = reduce()
    return { value, servers: [...reducing.servers.values()] }
  } finally {
    reducing = outer
  }
}

/** The client key the proxy being reduced now goes to, noting its server; undefined when unknown. */
export function destinationOf(server: KeyServer): string | undefined {
  if (!reducing) return undefined
  const at = `${typeof server.address === 'string' ? server.address : server.address.join(':')} ${server.authkey ?? ''}`
  if (!reducing.servers.has(at)) reducing.servers.set(at, { address: server.address, authkey: server.authkey })
  return reducing.key
}

/** This thread's client key, given by its starter (the key its arguments were counted for). */
let own: string | undefined

export function setOwnClientKey(key: string | undefined): void {
  own = key
}

export function ownClientKey(): string | undefined {
  return own
}
