// A pool worker: a process that takes tasks of a Redis pool's stream (pool-ops.ts) and runs the
// functions of the modules it was given — nothing else: a task names `{ module, name }`, and a
// module this worker was not started with is refused. Several workers on any machines share a
// pool's tasks through the stream's consumer group.

import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import { basename, extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { deserialize, serialize } from 'node:v8'
import { Redis } from 'ioredis'
import { GROUP, ensureGroup, lost, streamOf, type TaskResult } from './pool-ops.js'

export interface WorkerOptions {
  url?: string
  namespace?: string
  /** The pool's name (ctx.AioPool(name)). */
  pool: string
  /** Modules whose exports may be run: `path`, `specifier`, or `id=path` (a task's module is its id: the file's name without extension, or the id given). */
  modules: string[]
  /** Tasks run at once (default 1). */
  concurrency?: number
  /** How long (ms) a task's entry may go without a heartbeat before another worker takes it over (default 30,000; the pool's `idle` should match). */
  idle?: number
  /** Stops taking tasks; running ones finish. */
  signal?: AbortSignal
  /** Told each time a task is done (tests, logs). */
  onTask?(module: string, name: string, ok: boolean): void
}

type Fields = Record<string, Buffer>

function fieldsOf(list: Buffer[]): Fields {
  const out: Fields = {}
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i].toString()] = list[i + 1]
  return out
}

async function loadModules(specs: string[]): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>()
  for (const spec of specs) {
    const eq = spec.indexOf('=')
    const [id, where] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : [basename(spec, extname(spec)), spec]
    const url = /^[./]/.test(where) ? pathToFileURL(resolve(where)).href : where
    out.set(id, (await import(url)) as Record<string, unknown>)
  }
  return out
}

// KEYS: stream, results list; ARGV: group, entry, result. 1 when this call acknowledged the entry
// and answered; the list goes a day after its last result, so a pool that died leaves nothing for good.
const ANSWER = {
  numberOfKeys: 2,
  lua: `if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) ~= 1 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], 86400000)
redis.call('XDEL', KEYS[1], ARGV[2])
return 1`,
}

/** Runs a worker until its signal aborts (or forever). */
export async function runWorker(o: WorkerOptions): Promise<void> {
  const modules = await loadModules(o.modules)
  if (modules.size === 0) throw new TypeError('a worker needs at least one --module: it runs only the functions of the modules it is given')
  const url = o.url ?? 'redis://127.0.0.1:6379'
  const stream = streamOf(o.namespace ?? 'aio', o.pool)
  const idle = o.idle ?? 30_000
  const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
  // The script goes in the options, so the duplicates (one per slot) have it too.
  const r = new Redis(url, { scripts: { aioAnswer: ANSWER } })
  await ensureGroup(r, stream)
  const slots = Math.max(1, o.concurrency ?? 1)
  const loops = Array.from({ length: slots }, () => take(r.duplicate()))
  await Promise.all(loops)
  r.disconnect()

  async function take(c: Redis): Promise<void> {
    try {
      while (!o.signal?.aborted) {
        // First the tasks of workers that went quiet, then new ones.
        const claimed = (await c.callBuffer('XAUTOCLAIM', stream, GROUP, consumer, idle, '0-0', 'COUNT', 1)) as [Buffer, [Buffer, Buffer[]][]]
        let entry = claimed[1].find((e) => e && e[1])
        if (!entry) {
          const read = (await c.xreadgroupBuffer('GROUP', GROUP, consumer, 'COUNT', 1, 'BLOCK', 1000, 'STREAMS', stream, '>')) as [Buffer, [Buffer, Buffer[]][]][] | null
          entry = read?.[0]?.[1]?.[0]
        }
        if (entry) await handle(c, entry[0].toString(), fieldsOf(entry[1]))
      }
    } finally {
      c.disconnect()
    }
  }

  async function handle(c: Redis, id: string, f: Fields): Promise<void> {
    const reply = f.reply.toString()
    const task = Number(f.task)
    const retries = Number(f.retries ?? 1)
    const [[, , , deliveries]] = ((await c.xpending(stream, GROUP, id, id, 1)) as [string, string, number, number][]).concat([['', '', 0, 1]])
    if (deliveries > retries + 1) {
      // Past its retries: failed, by whoever acknowledges it first.
      await answer(c, reply, lost(task, deliveries - 1), id)
      return
    }
    // While it runs, the entry's idle time is reset: no one takes over a task that is alive.
    const beat = setInterval(() => void c.xclaim(stream, GROUP, consumer, 0, id, 'JUSTID').catch(() => {}), Math.max(100, Math.floor(idle / 3)))
    let result: TaskResult
    const module = f.module.toString()
    const name = f.name.toString()
    try {
      const m = modules.get(module)
      if (!m) throw Object.assign(new Error(`this worker has no module '${module}': it runs ${[...modules.keys()].join(', ')} (start it with --module)`), { name: 'ValueError' })
      const fn = m[name]
      if (typeof fn !== 'function') throw Object.assign(new Error(`module '${module}' has no function '${name}'`), { name: 'ValueError' })
      const calls = deserialize(f.calls) as unknown[][]
      const values: unknown[] = []
      for (const args of calls) values.push(await (fn as (...a: unknown[]) => unknown)(...args))
      result = { task, ok: true, value: values }
    } catch (error) {
      const e = error as Error
      result = { task, ok: false, error: { name: e?.name ?? 'Error', message: e?.message ?? String(error), stack: e?.stack } }
    } finally {
      clearInterval(beat)
    }
    o.onTask?.(module, name, result.ok)
    await answer(c, reply, result, id)
  }

  async function answer(c: Redis, reply: string, result: TaskResult, id: string): Promise<void> {
    let bytes: Buffer
    try {
      bytes = serialize(result)
    } catch (error) {
      bytes = serialize({ task: result.task, ok: false, error: { name: 'MaybeEncodingError', message: `Error sending result: ${(error as Error).message}` } } satisfies TaskResult)
    }
    // Whoever acknowledges the entry first answers for it, in the same script: a worker killed
    // between an XACK and its RPUSH would leave a task acknowledged and never answered.
    await (c as Redis & { aioAnswer(...a: (string | Buffer)[]): Promise<number> }).aioAnswer(stream, reply, GROUP, id, bytes)
  }
}
