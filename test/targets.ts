// Module targets for process tests ({ module, name }); they may import the library.
import { AioClient, AioEvent, AioProcess, AioQueue, AioLock, currentProcess, type AioArray, type AioValue } from '../generated/index.generated.js'

export function addTen(v: AioValue): void {
  v.value = (v.value as number) + 10
}

export default function addOne(v: AioValue): void {
  v.value = (v.value as number) + 1
}

export function reportName(names: AioArray): void {
  names.value = Buffer.from(currentProcess().name)
}

export function startChild(names: AioArray, result: AioValue): void {
  const child = new AioProcess({ target: () => {} })
  names.value = Buffer.from(child.name)
  child.start() // throws in a daemon process
  child.join(30_000)
  result.value = child.exitcode === 0 ? 0 : 2
}

export function forwardToGrandchild(q: AioQueue<string>): void {
  const child = new AioProcess({ target: (q: AioQueue<string>) => q.put('grandchild'), args: [q] })
  child.start()
  q.put('child')
  child.join(30_000)
}

/** A client that connects, echoes `rounds` messages upper-cased, and reports how it ended. */
export function echoClient(address: [string, number] | string, authkey: string | null, rounds: number, outcome: AioArray): void {
  try {
    const conn = AioClient(address, { authkey })
    for (let i = 0; i < rounds; i++) conn.sendBytes(Buffer.from(conn.recvBytes().toString().toUpperCase()))
    conn.close()
    outcome.value = Buffer.from('ok')
  } catch (e) {
    outcome.value = Buffer.from(`${(e as Error).name}: ${(e as Error).message}`.slice(0, 60))
  }
}

export function grandchildSendsEvent(q: AioQueue<unknown>): void {
  const child = new AioProcess({
    target: (q: AioQueue<unknown>, ev: any) => {
      q.put(ev)
      ev.set()
    },
    args: [q, new AioEvent()],
  })
  child.start()
  child.join(30_000)
}

/** A pool task: the worker's thread id (its pid in the thread context). */
export async function workerId(): Promise<number> {
  return (await import('node:worker_threads')).threadId
}

/** POOL-50: a pool created inside a child process works. */
export async function poolInChild(result: AioValue): Promise<void> {
  const { AioPool } = await import('../generated/index.generated.js')
  const pool = new AioPool({ processes: 2 })
  const squares = pool.map((x: number) => x * x, [1, 2, 3, 4])
  pool.close()
  pool.join()
  result.value = squares.reduce((a, b) => a + b, 0)
}

/** A user type for AioManager.register(). */
export class Counter {
  private sum: number
  constructor(start = 0) {
    this.sum = start
  }
  add(n: number): void {
    this.sum += n
  }
  total(): number {
    return this.sum
  }
}

/** Connects to a manager being served at `address` (retrying until it listens) and shuts it down. */
export async function shutdownManager(address: string, authkey: string): Promise<void> {
  const { AioManager } = await import('../generated/index.generated.js')
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const m = new AioManager({ address, authkey })
      m.connect()
      m.shutdown()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
    }
  }
}

/** Acquires a manager lock and exits without releasing it (a client that dies holding a lock). */
export function holdAndExit(lock: { acquire(): boolean }, held: { set(): void }): void {
  lock.acquire()
  held.set()
  process.exit(0)
}

/** Blocks in a proxy get() until killed (a client killed mid-call). */
export function blockInGet(q: { get(): unknown }, started: { set(): void }): void {
  started.set()
  q.get()
}

/** Waits on a manager Condition forever (a client killed inside Condition.wait). */
export function waitOnCondition(cond: { acquire(): boolean; wait(): boolean }, started: { set(): void }): void {
  cond.acquire()
  started.set()
  cond.wait()
}

// Shared objects of a manager server, one each per process, reached by registered getters (the
// "remote manager" pattern): Node and Python clients of the same manager meet at them.
const sharedObjects = new Map<string, unknown>()
function shared<T>(name: string, make: () => T): T {
  if (!sharedObjects.has(name)) sharedObjects.set(name, make())
  return sharedObjects.get(name) as T
}
export const toPython = (): AioQueue => shared('toPython', () => new AioQueue())
export const toNode = (): AioQueue => shared('toNode', () => new AioQueue())
export const sharedLock = (): AioLock => shared('lock', () => new AioLock())

/** A registered type whose method takes an item out of one of its manager's queues, in the server. */
export class Drainer {
  drain(q: { get(block?: boolean): unknown }): unknown {
    return q.get(false)
  }
}

/** A registered type whose methods return what cannot be sent back as a tree. */
export class Tangle {
  circular(): unknown {
    const a: Record<string, unknown> = {}
    a.self = a
    return a
  }
  deep(n: number): unknown {
    let x: unknown[] = []
    for (let i = 0; i < n; i++) x = [x]
    return x
  }
}

/** A registered type whose answers are over a manager frame's limit. */
export class Big {
  throwBig(n: number): never {
    throw Object.assign(new RangeError('with a big field'), { code: 'EBIG', big: 'x'.repeat(n) })
  }
  returnBig(n: number): string {
    return 'y'.repeat(n)
  }
  ok(): string {
    return 'ok'
  }
}

/** A registered callable that returns a function object with a method of its own. */
export function makeCallable(): unknown {
  const f = function (): number {
    return 1
  }
  return Object.assign(f, { hello: () => 'hi' })
}

/** The name of the process it runs in: a module that loads the library, run as a first pool's first task. */
export function processName(): string {
  return currentProcess().name
}
