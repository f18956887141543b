// A pool whose workers run anywhere: tasks are entries of a Redis Stream (`<ns>:Pool:<name>`),
// read by a consumer group of worker processes (worker.ts, `npx aioprocessing-worker`); each
// result goes back on the list of the pool object that submitted the task. These operations run
// in the Redis thread of the submitting thread (thread.ts), like every other object's.
//
// A task is `{ module, name }` of a function a worker has loaded (its --module list) and its
// arguments as V8 serialization: no source ever travels, so a worker runs only code it was given.
// A worker that dies mid-task leaves its entry pending; after `idle` ms without a heartbeat any
// worker claims it (XAUTOCLAIM) and runs it again, up to `retries` times; past that the task fails
// with WorkerLostError. Workers refresh their own entries (XCLAIM of themselves) while they run.

import { randomUUID } from 'node:crypto'
import { deserialize, serialize } from 'node:v8'
import type { Redis } from 'ioredis'
import { OpError, keyOf, type Env } from './ops.js'

export const GROUP = 'workers'

export interface TaskFields {
  /** The submitting pool object's results list. */
  reply: string
  /** This task's number in that pool. */
  task: string
  module: string
  name: string
  /** V8 serialization of the argument lists, one per call (a chunk of map() holds several). */
  calls: Buffer
  /** How it runs each: 'apply' (fn(...args)) for every chunk item. */
  retries: string
}

export interface TaskResult {
  task: number
  ok: boolean
  /** The values, one per call of the chunk; or the error record. */
  value?: unknown[]
  error?: { name: string; message: string; stack?: string }
}

/** The stream of a pool's tasks (the key of its name, as every object's). */
export const streamOf = (ns: string, pool: string): string => keyOf(ns, 'Pool', pool)

export async function ensureGroup(r: Redis, stream: string): Promise<void> {
  try {
    await r.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM')
  } catch (error) {
    if (!String((error as Error).message).includes('BUSYGROUP')) throw error
  }
}

/** One pool object of this thread: its results list, the tasks it waits for, and what came back. */
interface PoolState {
  stream: string
  reply: string
  retries: number
  idleMs: number
  next: number
  results: Map<number, TaskResult>
  waiters: Map<number, Array<() => void>>
  /** Entry ids of tasks not yet answered, so terminate() can take them back. */
  entries: Map<number, string>
  /** No more tasks (close()); the results of those submitted are still read. */
  closed: boolean
  terminated: boolean
}

const pools = new Map<string, PoolState>()

function stateOf(key: string): PoolState {
  const p = pools.get(key)
  if (!p) throw new OpError('ValueError', 'the pool was closed in this thread')
  return p
}

/** Reads this pool's results list until the pool goes; each result wakes its waiters. */
async function readResults(env: Env, key: string, p: PoolState): Promise<void> {
  const c = env.blocking()
  try {
    while (!p.terminated && !(p.closed && p.entries.size === 0)) {
      const r = await c.blpopBuffer(p.reply, 1)
      if (r) {
        const result = deserialize(r[1]) as TaskResult
        p.results.set(result.task, result)
        p.entries.delete(result.task)
        for (const wake of p.waiters.get(result.task) ?? []) wake()
        p.waiters.delete(result.task)
      } else await failLost(env, p)
    }
  } finally {
    env.releaseBlocking(c)
  }
}

/**
 * Tasks past their retries whose last worker went quiet (no worker left to claim them): failed here
 * with WorkerLostError. Whoever acknowledges an entry first answers for it.
 */
async function failLost(env: Env, p: PoolState): Promise<void> {
  if (p.entries.size === 0) return
  const pending = (await env.r.xpending(p.stream, GROUP, 'IDLE', p.idleMs, '-', '+', 100)) as [string, string, number, number][]
  const mine = new Map([...p.entries].map(([task, entry]) => [entry, task]))
  for (const [entry, , , deliveries] of pending) {
    const task = mine.get(entry)
    if (task === undefined || deliveries <= p.retries) continue
    if (Number(await env.r.xack(p.stream, GROUP, entry)) !== 1) continue
    await env.r.xdel(p.stream, entry)
    await env.r.rpush(p.reply, serialize(lost(task, deliveries)))
  }
}

export function lost(task: number, deliveries: number): TaskResult {
  return { task, ok: false, error: { name: 'WorkerLostError', message: `the pool worker running this task ended before it finished (${deliveries} tries)` } }
}

async function submit(env: Env, p: PoolState, module: string, name: string, calls: unknown[][]): Promise<number> {
  if (p.closed) throw new OpError('ValueError', 'Pool not running')
  const task = p.next++
  const entry = await env.r.xadd(p.stream, '*', 'reply', p.reply, 'task', String(task), 'module', module, 'name', name, 'calls', serialize(calls), 'retries', String(p.retries))
  if (entry) p.entries.set(task, entry)
  return task
}

/** Until a result of one of `tasks` comes in, the signal aborts, or `left` ms (at most a second) pass. */
function woken(env: Env, p: PoolState, tasks: number[], left: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(wake, Math.min(left, 1000))
    function wake(): void {
      clearTimeout(timer)
      env.signal.removeEventListener('abort', wake)
      resolve()
    }
    env.signal.addEventListener('abort', wake, { once: true })
    for (const t of tasks) p.waiters.set(t, [...(p.waiters.get(t) ?? []), wake])
  })
}

/** Until every task of `tasks` has its result (or the deadline): the results, in that order. */
async function wait(env: Env, p: PoolState, tasks: number[], deadline: number): Promise<TaskResult[] | undefined> {
  for (const task of tasks) {
    while (!p.results.has(task)) {
      const left = deadline - performance.now()
      if (left <= 0) return undefined
      env.signal.throwIfAborted()
      await woken(env, p, [task], left)
    }
  }
  return tasks.map((t) => p.results.get(t)!)
}

export const POOL: Record<string, (env: Env, key: string, args: unknown[]) => Promise<unknown>> = {
  __create: async (env, key, [options]) => {
    const o = (options ?? {}) as { retries?: number; idle?: number }
    const p: PoolState = {
      stream: key,
      reply: `${key}:results:${randomUUID()}`,
      retries: o.retries ?? 1,
      idleMs: o.idle ?? 30_000,
      next: 1,
      results: new Map(),
      waiters: new Map(),
      entries: new Map(),
      closed: false,
      terminated: false,
    }
    await ensureGroup(env.r, key)
    // One pool object per call of the factory: its key in this thread is its results list.
    pools.set(p.reply, p)
    void readResults(env, p.reply, p).catch(() => {})
    return p.reply
  },
  /** [poolRef, module, name, calls[]]: the tasks' numbers. */
  submit: async (env, _key, [ref, module, name, chunks]) => {
    const p = stateOf(String(ref))
    const out: number[] = []
    for (const calls of chunks as unknown[][][]) out.push(await submit(env, p, String(module), String(name), calls))
    return out
  },
  /** [poolRef, tasks, timeout]: their results, or undefined when the timeout passed. */
  wait: async (env, _key, [ref, tasks, timeout]) => {
    const p = stateOf(String(ref))
    const deadline = timeout === null || timeout === undefined ? Infinity : performance.now() + Math.max(0, Number(timeout))
    const results = await wait(env, p, tasks as number[], deadline)
    if (results) for (const t of tasks as number[]) p.results.delete(t)
    return results
  },
  /** [poolRef, tasks, timeout]: the first of `tasks` whose result is in (removed), or undefined at the timeout. */
  waitAny: async (env, _key, [ref, tasks, timeout]) => {
    const p = stateOf(String(ref))
    const deadline = timeout === null || timeout === undefined ? Infinity : performance.now() + Math.max(0, Number(timeout))
    for (;;) {
      const done = (tasks as number[]).find((t) => p.results.has(t))
      if (done !== undefined) {
        const r = p.results.get(done)!
        p.results.delete(done)
        return r
      }
      const left = deadline - performance.now()
      if (left <= 0) return undefined
      env.signal.throwIfAborted()
      await woken(env, p, tasks as number[], left)
    }
  },
  /** [poolRef, tasks]: the numbers of those whose results are in. */
  ready: async (_env, _key, [ref, tasks]) => {
    const p = stateOf(String(ref))
    return (tasks as number[]).filter((t) => p.results.has(t))
  },
  close: async (_env, _key, [ref]) => {
    const p = pools.get(String(ref))
    if (p) p.closed = true
    return undefined
  },
  /** Takes back every task not answered yet (its entry leaves the stream) and fails them with PoolTerminatedError. */
  terminate: async (env, _key, [ref]) => {
    const p = pools.get(String(ref))
    if (!p) return undefined
    for (const [task, entry] of p.entries) {
      await env.r.xack(p.stream, GROUP, entry)
      await env.r.xdel(p.stream, entry)
      p.results.set(task, { task, ok: false, error: { name: 'PoolTerminatedError', message: 'the pool was terminated before this task finished' } })
      for (const wake of p.waiters.get(task) ?? []) wake()
    }
    p.entries.clear()
    p.closed = true
    p.terminated = true
    await env.r.del(p.reply)
    return undefined
  },
}
