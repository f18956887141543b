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

/** The reduction under way: its destination, and what it noted (made on first use: a pool makes one per task, most with no proxy). */
let reducing: { key: string; only?: string; servers?: Map<string, KeyServer>; counted?: CountedRef[] } | undefined
const NONE: never[] = []

/**
 * The destination of a pool task's arguments: which worker rebuilds them is not known when they
 * are reduced (at submission), and a task may go to another worker after its first one died. So
 * the sender counts a reference of its own for the task while it is in the pool (released when it
 * leaves, answered, lost or withdrawn: pool dispatch.ts), and the worker that rebuilds a record
 * counts its own (proxy.ts rebuild), as Python's rebuild does. Counted for nobody at submission
 * and adopted by the worker, a task lost with a worker killed before it had rebuilt the task's
 * arguments kept them for ever (a pipe end in it never closed).
 */
export const REBUILDER = 'rebuilder'

/** A reference counted for a pool task (REBUILDER): its server and object. */
export interface CountedRef extends KeyServer {
  id: number
}

/** Gives back references counted for a task; set by the proxies' module, which alone counts them. */
let releaser: ((refs: readonly CountedRef[]) => void) | undefined

export function setCountedReleaser(release: (refs: readonly CountedRef[]) => void): void {
  releaser = release
}

/** Gives back the references counted for a task that left its pool. */
export function releaseCounted(refs: readonly CountedRef[] | undefined): void {
  if (refs?.length) releaser?.(refs)
}

/**
 * Runs `reduce` (a reduction of a process's arguments) with every proxy it sends counted for client
 * `key`; returns its value and the servers those proxies are of (given to `failed` if it throws).
 * With `only` (a serverText), just the proxies of that server: a server's answer to a client, whose
 * key is its key with that server alone (a thread has one key per server but in its process's
 * first thread).
 */
export function reduceFor<T>(key: string, reduce: () => T, failed?: (servers: KeyServer[]) => void, only?: string): { value: T; servers: KeyServer[]; counted: CountedRef[] } {
  const outer = reducing
  const mine: NonNullable<typeof reducing> = (reducing = only === undefined ? { key } : { key, only })
  const servers = (): KeyServer[] => (mine.servers ? [...mine.servers.values()] : NONE)
  try {
    const value = reduce()
    return { value, servers: servers(), counted: mine.counted ?? NONE }
  } catch (error) {
    // A task or process that could not be made: what was counted for it goes back.
    releaseCounted(mine.counted)
    failed?.(servers())
    throw error
  } finally {
    reducing = outer
  }
}

/** Notes a reference counted for the task being reduced now (REBUILDER). */
export function noteCounted(ref: CountedRef): void {
  if (reducing) (reducing.counted ??= []).push(ref)
}

/** The client key the proxy being reduced now goes to, noting its server; undefined when unknown. */
export function destinationOf(server: KeyServer): string | undefined {
  if (!reducing) return undefined
  const at = serverText(server)
  if (reducing.only !== undefined && at !== reducing.only) return undefined
  reducing.servers ??= new Map()
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

/** A server as one string: its address and authkey. */
export function serverText(server: KeyServer): string {
  return `${typeof server.address === 'string' ? server.address : server.address.join(':')} ${server.authkey ?? ''}`
}
