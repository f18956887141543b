// The Redis context beside the Redis peers on the same local server, in one run: queue put+get
// pairs (and BullMQ's job throughput), lock acquire+release pairs (redlock, redis-semaphore's
// Mutex), and Redis's own round-trip floor (ioredis PING), so each row can be read as PINGs per
// operation. Run by the library's `npm run bench` (BENCH_ONLY=redis).

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { AioPool } from 'aioprocessing'
import { redisContext } from '../index.js'
import { startRedis } from '../test/context.js'

/** The library's bench helpers (its dist/bench/primitives.js), loaded at run time. */
interface Row {
  benchmark: string
  implementation: string
  median: number
  unit: string
  notes?: string[]
}
interface Helpers {
  row(benchmark: string, implementation: string, unit: string, n: number, values: number[]): Row
  interleaved(impls: Array<() => Promise<number>>, runs?: number): Promise<number[][]>
}

const RUNS = 5
const PAIRS = 2_000
const JOBS = 2_000
const QUEUE = 'Redis: queue put+get pairs, one client'
const JOB_RATE = 'Redis: 2,000 items through a queue (put all, then one consumer takes all)'
const LOCK = 'Redis: lock acquire+release pairs, one client, uncontended'
const FLOOR = "Redis: round trips, one client (Redis's own floor)"
const POOL_TRIVIAL = 'Redis pool: 20,000 trivial tasks, map with default chunking, 2 workers'
const POOL_CPU = 'Redis pool: 200 CPU tasks of 5 ms, wall ÷ ideal 500 ms, 2 workers'
const TRIVIAL = 20_000
const CPU_TASKS = 200
const CPU_MS = 5

async function timed(f: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

export async function benchRedis({ log = () => {}, only }: { log?: (line: string) => void; only?: RegExp } = {}): Promise<Row[]> {
  if (only && !only.test('redis')) return []
  const { row, interleaved } = (await import(new URL('../../../dist/bench/primitives.js', import.meta.url).href)) as Helpers
  const { proxyPairs } = (await import(new URL('../../../dist/bench/pairs.js', import.meta.url).href)) as { proxyPairs(q: unknown, lock: unknown, n: number): Array<() => Promise<number>> }
  const rows: Row[] = []
  const failed = (benchmark: string, implementation: string, error: unknown): Row => ({ ...row(benchmark, implementation, 'failed', 0, [NaN]), notes: [`failed in this run: ${String((error as Error)?.message ?? error).split('\n')[0]}`] })
  const rate = (n: number) => (ms: number[]) => ms.map((t) => (n * 1000) / t)
  const server = startRedis()
  const ctx = redisContext({ url: server.socket, namespace: 'bench' })
  const ping = new Redis(server.socket)
  try {
    log('redis: PING floor, queue and lock pairs')
    const q = ctx.AioQueue<number>('pairs')
    const lock = ctx.AioLock('pairs')
    const [floor, qb, qc, lb, lc] = await interleaved([
      () => timed(async () => {
        for (let i = 0; i < PAIRS; i++) await ping.ping()
      }),
      ...proxyPairs(q, lock, PAIRS),
    ], RUNS)
    rows.push(row(FLOOR, 'ioredis PING, awaited one by one', 'round trips/s', PAIRS, rate(PAIRS)(floor)))
    rows.push(row(QUEUE, 'aioprocessing-redis put()/get()', 'pairs/s', PAIRS, rate(PAIRS)(qb)))
    rows.push(row(QUEUE, 'aioprocessing-redis await coro_put()/coro_get()', 'pairs/s', PAIRS, rate(PAIRS)(qc)))
    rows.push(row(LOCK, 'aioprocessing-redis AioLock acquire()/release() (lease, token, fencing number)', 'pairs/s', PAIRS, rate(PAIRS)(lb)))
    rows.push(row(LOCK, 'aioprocessing-redis AioLock await coro_acquire()/coro_release()', 'pairs/s', PAIRS, rate(PAIRS)(lc)))

    log('redis: redlock and redis-semaphore')
    try {
      // redlock ships no types for this module resolution: loaded by a specifier the compiler does not follow.
      const redlockModule = 'redlock'
      const { default: Redlock } = (await import(redlockModule)) as { default: new (clients: Redis[], options: object) => { acquire(keys: string[], ttl: number): Promise<{ release(): Promise<unknown> }> } }
      const { Mutex } = await import('redis-semaphore')
      const client = new Redis(server.socket)
      const redlock = new Redlock([client], { retryCount: 0 })
      const [rl, rs] = await interleaved([
        () => timed(async () => {
          for (let i = 0; i < PAIRS; i++) {
            const l = await redlock.acquire(['bench:redlock'], 10_000)
            await l.release()
          }
        }),
        () => timed(async () => {
          for (let i = 0; i < PAIRS; i++) {
            const m = new Mutex(client, 'bench-mutex', { lockTimeout: 10_000, refreshInterval: 0 })
            await m.acquire()
            await m.release()
          }
        }),
      ], RUNS)
      rows.push(row(LOCK, 'redlock (one Redis) acquire()/release()', 'pairs/s', PAIRS, rate(PAIRS)(rl)))
      rows.push(row(LOCK, 'redis-semaphore Mutex acquire()/release()', 'pairs/s', PAIRS, rate(PAIRS)(rs)))
      client.disconnect()
    } catch (error) {
      rows.push(failed(LOCK, 'redlock / redis-semaphore', error))
    }

    log('redis: queue throughput, aioprocessing-redis and BullMQ')
    const drained = ctx.AioQueue<number>('drain')
    const [ours] = await interleaved([
      () => timed(async () => {
        for (let i = 0; i < JOBS; i++) drained.put(i)
        for (let i = 0; i < JOBS; i++) await drained.coro_get()
      }),
    ], RUNS)
    rows.push(row(JOB_RATE, 'aioprocessing-redis put() then coro_get()', 'items/s', JOBS, rate(JOBS)(ours)))
    try {
      const { Queue, Worker } = await import('bullmq')
      const connection = { path: server.socket }
      const runs: number[] = []
      for (let r = 0; r <= RUNS; r++) {
        const name = `bench${r}`
        const queue = new Queue(name, { connection })
        const ms = await timed(async () => {
          await queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'job', data: { i } })))
          await new Promise<void>((resolve, reject) => {
            let done = 0
            const worker = new Worker(name, async () => undefined, { connection, concurrency: 1 })
            worker.on('completed', () => {
              if (++done === JOBS) void worker.close().then(resolve, reject)
            })
            worker.on('error', reject)
          })
        })
        await queue.obliterate({ force: true })
        await queue.close()
        if (r > 0) runs.push(ms)
      }
      rows.push(row(JOB_RATE, 'BullMQ addBulk() then one Worker (concurrency 1)', 'items/s', JOBS, rate(JOBS)(runs)))
    } catch (error) {
      rows.push(failed(JOB_RATE, 'BullMQ', error))
    }

    log('redis: a pool of 2 worker processes beside the thread pool')
    const cli = fileURLToPath(new URL('../worker-cli.js', import.meta.url))
    const tasks = fileURLToPath(new URL('../test/tasks.js', import.meta.url))
    const workers = [0, 1].map(() => spawn(process.execPath, [cli, '--url', server.socket, '--namespace', 'bench', '--pool', 'bench', '--module', tasks], { stdio: 'ignore' }))
    const thread = new AioPool({ processes: 2 })
    try {
      const pool = ctx.AioPool('bench')
      const xs = Array.from({ length: TRIVIAL }, (_, i) => i)
      const cpu = Array.from({ length: CPU_TASKS }, () => [CPU_MS])
      const [rt, tt, rc, tc] = await interleaved([
        () => timed(async () => void (await pool.coro_map({ module: 'tasks', name: 'square' }, xs))),
        () => timed(async () => void (await thread.coro_map((x: number) => x * x, xs))),
        () => timed(async () => void (await pool.coro_starmap({ module: 'tasks', name: 'busy' }, cpu, 1))),
        () => timed(async () => void (await thread.coro_starmap((ms: number) => {
          const end = performance.now() + ms
          while (performance.now() < end);
          return ms
        }, cpu as [number][], 1))),
      ], RUNS)
      const ideal = (CPU_TASKS * CPU_MS) / 2
      rows.push(row(POOL_TRIVIAL, 'aioprocessing-redis AioPool coro_map (2 worker processes)', 'tasks/s', TRIVIAL, rate(TRIVIAL)(rt)))
      rows.push(row(POOL_TRIVIAL, 'aioprocessing AioPool (2 worker threads) coro_map', 'tasks/s', TRIVIAL, rate(TRIVIAL)(tt)))
      rows.push(row(POOL_CPU, 'aioprocessing-redis AioPool coro_starmap, chunksize 1', '× ideal', CPU_TASKS, rc.map((ms) => ms / ideal)))
      rows.push(row(POOL_CPU, 'aioprocessing AioPool (2 worker threads) coro_starmap, chunksize 1', '× ideal', CPU_TASKS, tc.map((ms) => ms / ideal)))
      pool.terminate()
    } catch (error) {
      rows.push(failed(POOL_TRIVIAL, 'Redis pool', error))
    } finally {
      thread.terminate()
      for (const w of workers) w.kill('SIGKILL')
    }
  } finally {
    ping.disconnect()
    ctx.close()
    server.stop()
  }
  const pingRate = rows.find((r) => r.benchmark === FLOOR)?.median
  if (pingRate) for (const r of rows) if (r.unit === 'pairs/s' && r.median > 0) (r.notes ??= []).push(`${(pingRate / r.median).toFixed(1)} PING round trips of time per pair`)
  return rows
}
