// The spawn context's shared objects live in a broker: a manager server (manager-server.ts) in a
// daemon thread of the first process that asks for one, on a Unix socket in a private temporary
// folder, with a random authkey. Its proxies travel to spawned processes, which connect to it.
// The broker ends with the process that started it (its spawned children then lose the objects).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { isMainThread } from 'node:worker_threads'
import { pipeEnds, type Connection } from '../ipc/connection.js'
import { ProcessCore } from '../process/process.js'
import { createPipe } from './proxy.js'
import { createRemote } from './create-remote.js'
import type { ServerOptions } from './manager-server.js'
import type { ProxyState } from './protocol.js'
import { ProcessError } from '../core/errors.js'

let broker: { address: ProxyState['address']; authkey: string } | undefined

/** A private folder for Unix sockets, removed when this process exits. */
const folders = new Set<string>()

export function socketFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aioprocessing-'))
  // One exit listener for all of them: a listener per manager would trip Node's leak warning past ten.
  if (folders.size === 0) process.once('exit', () => {
    for (const f of folders) rmSync(f, { recursive: true, force: true })
  })
  folders.add(dir)
  return dir
}

/**
 * Runs a manager server in a thread of this process and waits until it listens: the process, and
 * the address it got (the real port for port 0). A server that fails first (an address in use) is
 * reported at once, not after the 30 s bound.
 */
export function startServerThread(options: ServerOptions, name: string, daemon: boolean): { server: ProcessCore; address: ProxyState['address'] } {
  const [ready, theirs] = pipeEnds<Connection>(false)
  // Its fds untracked, so that it may serve fast lanes (manager-server.ts openLane). Node tracks a
  // worker's fds when any thread above it does: under a main thread (whose supervisor does not)
  // the server is untracked; under a worker thread it cannot be, so it serves no lanes there.
  const server = new ProcessCore({ target: { module: new URL('./manager-server.js', import.meta.url).href, name: 'runServer' }, args: [{ ...options, lanes: isMainThread }, theirs], name, daemon, untrackedFds: true })
  server.start()
  theirs.close()
  const deadline = performance.now() + 30_000
  // The pipe's word wakes this loop when the server reports its address; the 20 ms steps are for
  // a server thread that dies before it reports (a bad address): a thread that ends abruptly
  // does not close its pipe end, so only its process word tells, and one wait sleeps on one word.
  while (!ready.poll(20)) {
    if (!server.isAlive()) throw new ProcessError(`${name} failed to start (exitcode ${server.exitcode}); its error is printed above`)
    if (performance.now() > deadline) throw new ProcessError(`${name} did not start within 30 s`)
  }
  const address = ready.recv() as ProxyState['address']
  ready.close()
  return { server, address }
}

function spawnBroker(): { address: ProxyState['address']; authkey: string } {
  if (!broker) {
    const authkey = randomBytes(32).toString('hex')
    const { address } = startServerThread({ address: join(socketFolder(), 'broker.sock'), authkey }, 'SpawnBroker', true)
    broker = { address, authkey }
  }
  return broker
}

/** ctx.AioLock(...) and friends of the spawn context: the object is made in the broker. */
export function spawnObject<T>(typeid: string, args: unknown[]): T {
  const b = spawnBroker()
  return createRemote(b.address, b.authkey, typeid, args) as T
}

/** ctx.AioPipe(duplex): both ends live in the broker, so either may go to a spawned process. */
export function spawnPipe<C>(duplex = true): [C, C] {
  const b = spawnBroker()
  return createPipe<C>(b.address, b.authkey, duplex)
}
