// The spawn context's shared objects live in a broker: a manager server (manager-server.ts) in a
// daemon thread of the first process that asks for one, on a Unix socket in a private temporary
// folder, with a random authkey. Its proxies travel to spawned processes, which connect to it,
// and the processes (and threads) it starts make their objects there too (core/thread-broker.ts).
// The broker ends with the process that started it (its spawned children end with it).

import { lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { isMainThread } from 'node:worker_threads'
import { pipeEnds, type Connection } from '../ipc/connection.js'
import { UNIX_PATH_MAX } from '../ipc/sockets.js'
import { ProcessCore } from '../process/process.js'
import { createPipe } from './proxy.js'
import { createRemote } from './create-remote.js'
import type { ServerOptions } from './manager-server.js'
import type { ProxyState } from './protocol.js'
import { ProcessError } from '../core/errors.js'
import { forgetAtExit, makeTempFolder, removeAtExit } from '../core/temp-folder.js'
import { setThreadBroker, threadBroker, type BrokerAddress } from '../core/thread-broker.js'



/**
 * Each folder holds a file OWNER, `<machine> <pid>`, so that a later process can tell one whose
 * process is gone without an exit (SIGKILL, a crash) and remove it. In the file, not in the name:
 * a socket's path has at most 107 bytes, and a longer name left a long TMPDIR without managers.
 * `machine` stands for this host's name and pid namespace (its inode, Linux), so that a pid is
 * only judged where it means that process: not from a container that shares /tmp, nor from
 * another host that shares the folder (every host's first pid namespace has the same inode).
 */
const OWNER = 'owner'
const FOLDER = /^aioprocessing-[A-Za-z0-9]{6}$/

/** This machine as OWNER names it; undefined where the pid namespace cannot be read (no sweep there). Worked out on a first folder, not when the module loads. */
function machine(): string | undefined {
  let namespace: string | undefined
  try {
    namespace = /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1]
  } catch {
    // not Linux
  }
  return namespace === undefined ? undefined : createHash('sha1').update(`${hostname()} ${namespace}`).digest('hex').slice(0, 8)
}

/** The bytes of a socket's path in a folder under `base`. */
function socketPathBytes(base: string): number {
  return Buffer.byteLength(join(base, 'aioprocessing-XXXXXX', 'manager.sock'))
}

/** Why a socket folder under `base` cannot be, or undefined: a socket's path there would be too long (a TMPDIR of more than ~80 characters). */
function socketPathTooLong(base: string): string | undefined {
  const n = socketPathBytes(base)
  return n > UNIX_PATH_MAX ? `a Unix socket's path there would have ${n} bytes, over the ${UNIX_PATH_MAX} it may have` : undefined
}

/** What this process writes in its folders' OWNER; set by its first folder, which sweeps. */
let owner: string | undefined

export function socketFolder(): string {
  // In the temporary folder, or where a socket's path fits and a folder can be made (core/temp-folder.ts).
  const dir = makeTempFolder('aioprocessing-', socketPathTooLong)
  if (owner === undefined) {
    const m = machine()
    owner = `${m ?? 'unknown'} ${process.pid}`
    if (m !== undefined) removeOrphans(dirname(dir), m)
  }
  // Noted before OWNER is written: a write that fails (no fd left) leaves no folder behind at exit.
  removeAtExit(dir)
  writeFileSync(join(dir, OWNER), owner)
  return dir
}

/** Removes a folder of socketFolder() whose server has stopped: a manager started and shut down a hundred times left a hundred till exit. */
export function removeSocketFolder(dir: string): void {
  if (!forgetAtExit(dir)) return
  try {
    rmSync(dir, { recursive: true, force: true })
  } catch {
    // removed at exit, or by the next process's sweep
  }
}

/**
 * Removes the folders of this machine whose process is gone: one killed (SIGKILL) or crashed ran
 * no exit listener. Once per process, before its first folder. A folder without an OWNER (being
 * made, or an older version's) stays, and another user's; a pid in use again keeps its folder
 * until that process ends.
 */
function removeOrphans(base: string, machine: string): void {
  let names: string[]
  try {
    names = readdirSync(base)
  } catch {
    return
  }
  for (const name of names) {
    if (!FOLDER.test(name)) continue
    const dir = join(base, name)
    let claim: string[]
    try {
      // This user's folders only (root would remove any user's).
      const st = lstatSync(dir)
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue
      claim = readFileSync(join(dir, OWNER), 'latin1').split(' ')
    } catch {
      continue
    }
    const pid = Number(claim[1])
    if (claim[0] !== machine || !Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // another user's, or removed meanwhile
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, as another user's process
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
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

/** This thread's broker: its starter's (core/thread-broker.ts), else one it starts, once. */
function spawnBroker(): BrokerAddress {
  let broker = threadBroker()
  if (!broker) {
    const authkey = randomBytes(32).toString('hex')
    const { address } = startServerThread({ address: join(socketFolder(), 'broker.sock'), authkey }, 'SpawnBroker', true)
    setThreadBroker((broker = { address, authkey }))
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
