// Pool benchmarks: AioPool beside piscina, tinypool, workerpool, poolifier and Python's
// multiprocessing.Pool, two workers each, the same task code, in one run.
//
// (a) 20,000 trivial tasks (x * 2): AioPool's coro_map with Python's default chunking and Python's
//     Pool.map; then 20,000 separate calls in flight at once (coro_apply, run/exec/execute,
//     apply_async) for every pool.
// (b) 200 CPU tasks of 5 ms each: wall time against the ideal (200 × 5 ms / 2 workers = 500 ms).
// (c) start-up: a new pool until its first result, then the pool is shut down (untimed).
// Each figure is the median of RUNS runs after one warm-up run, every result checked.

import { execFile } from 'node:child_process'
import { writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Piscina } from 'piscina'
import { FixedThreadPool } from 'poolifier'
import { AioPool } from '../generated/index.generated.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'
import { CPU_MS, CPU_TASKS, IDEAL_MS, ROOT, RUNS, TIMEOUT_MS, TRIVIAL, WORKERS, check, runPythonPool, timed, peer, tinypoolSubject, workerpoolSubject, laterStart, type Subject } from './pool-common.js'
import type { Job } from './peers/task.js'


const TASK_MODULE = new URL('./peers/task.js', import.meta.url).href


function subjects(): Subject[] {
  let aio: AioPool
  let piscina: Piscina
  let poolifier: FixedThreadPool<Job, number>
  return [
    {
      name: 'aioprocessing-ts AioPool coro_apply',
      start: async () => {
        aio = new AioPool({ processes: WORKERS })
        await aio.coro_apply({ module: TASK_MODULE, name: 'run' }, [{ op: 'double', x: 0 }])
      },
      each: (jobs) => Promise.all(jobs.map((j) => aio.coro_apply<number>({ module: TASK_MODULE, name: 'run' }, [j]))),
      stop: async () => {
        aio.terminate()
        await aio.coro_join()
      },
    },
    {
      name: 'piscina run',
      start: async () => {
        piscina = new Piscina({ filename: peer('piscina-worker'), minThreads: WORKERS, maxThreads: WORKERS })
        await piscina.run({ op: 'double', x: 0 })
      },
      each: (jobs) => Promise.all(jobs.map((j) => piscina.run(j) as Promise<number>)),
      stop: () => piscina.destroy(),
    },
    tinypoolSubject('tinypool run', 'worker_threads'),
    workerpoolSubject('workerpool exec', 'thread'),
    {
      name: 'poolifier execute',
      start: async () => {
        poolifier = new FixedThreadPool<Job, number>(WORKERS, peer('poolifier-worker'))
        await poolifier.execute({ op: 'double', x: 0 })
      },
      each: (jobs) => Promise.all(jobs.map((j) => poolifier.execute(j))),
      stop: () => poolifier.destroy(),
    },
  ]
}

export const ENTRY = JSON.stringify(new URL('../generated/index.generated.js', import.meta.url).href)
const PEER = (name: string) => JSON.stringify(peer(name))
const TASK = JSON.stringify(TASK_MODULE)
/**
 * Floors, not pools: two bare worker threads started as a pool starts its two, each loading the
 * task's module and nothing else, to the first answer. A worker whose first module is an ES
 * module pays for Node's ES module loader before that module runs; one whose first module is
 * CommonJS (piscina's, tinypool's) pays for it when it imports the task's module, which is an ES
 * module here as in most code today. No pool can start sooner than these and run code of its own.
 */
const FLOOR_NAMES = {
  mjs: 'floor: 2 bare worker threads, an ES module importing the task (no pool code)',
  cjs: 'floor: 2 bare worker threads, a CommonJS module importing the task (no pool code)',
}
function bareWorkers(kind: 'mjs' | 'cjs'): string {
  const file = join(ROOT, `.bench-bare-worker.${kind}`)
  const source = kind === 'mjs'
    ? `import { parentPort } from 'node:worker_threads'; import { run } from ${TASK}; parentPort.on('message', (job) => parentPort.postMessage(run(job)))`
    : `const { parentPort } = require('node:worker_threads'); const task = import(${TASK}); parentPort.on('message', async (job) => parentPort.postMessage((await task).run(job)))`
  return `import { Worker } from 'node:worker_threads'; import { writeFileSync, rmSync } from 'node:fs'; const f = ${JSON.stringify(file)}; writeFileSync(f, ${JSON.stringify(source)}); const t = performance.now(); const ws = [new Worker(f), new Worker(f)]; for (const w of ws) w.postMessage({ op: 'double', x: 1 }); await Promise.race(ws.map((w) => new Promise((r) => w.once('message', r)))); console.log(performance.now() - t); for (const w of ws) await w.terminate(); rmSync(f, { force: true })`
}

/** Scripts for a fresh `node`: each prints the ms from before its pool's creation to the first result. */
const COLD: [string, string][] = [
  ['aioprocessing-ts AioPool', `import { AioPool } from ${ENTRY}; const t = performance.now(); const p = new AioPool({ processes: 2 }); await p.coro_apply({ module: ${TASK}, name: 'run' }, [{ op: 'double', x: 1 }]); console.log(performance.now() - t); p.terminate()`],
  ['piscina', `import { Piscina } from 'piscina'; const t = performance.now(); const p = new Piscina({ filename: ${PEER('piscina-worker')}, minThreads: 2, maxThreads: 2 }); await p.run({ op: 'double', x: 1 }); console.log(performance.now() - t); await p.destroy()`],
  ['tinypool', `import Tinypool from 'tinypool'; const t = performance.now(); const p = new Tinypool({ filename: ${PEER('piscina-worker')}, minThreads: 2, maxThreads: 2 }); await p.run({ op: 'double', x: 1 }); console.log(performance.now() - t); await p.destroy()`],
  ['workerpool', `import workerpool from 'workerpool'; const t = performance.now(); const p = workerpool.pool(${PEER('workerpool-worker')}, { minWorkers: 2, maxWorkers: 2, workerType: 'thread' }); await p.exec('run', [{ op: 'double', x: 1 }]); console.log(performance.now() - t); await p.terminate()`],
  ['poolifier', `import { FixedThreadPool } from 'poolifier'; const t = performance.now(); const p = new FixedThreadPool(2, ${PEER('poolifier-worker')}); await p.execute({ op: 'double', x: 1 }); console.log(performance.now() - t); await p.destroy()`],
  ...(['mjs', 'cjs'] as const).map((kind) => [FLOOR_NAMES[kind], bareWorkers(kind)] as [string, string]),
]


/** Runs `script` as a module file in a fresh node (peers' workers inherit -e badly), then removes it. */
export async function coldStart(script: string): Promise<number> {
  const file = join(ROOT, `.bench-cold-${process.pid}.mjs`)
  await writeFile(file, script)
  try {
    return await new Promise((resolve, reject) => {
      execFile(process.execPath, [file], { timeout: TIMEOUT_MS, cwd: ROOT }, (error, stdout, stderr) => {
        const ms = Number(stdout.trim().split('\n').pop())
        // Exit 13 (a top-level await that never settled) after the figure was printed: the pool's
        // shutdown, awaited last, did not settle (poolifier's destroy() does so ~1 run in 6 here).
        // Its start-up was measured; its shutdown is not what this row times.
        const shutdownOnly = (error as { code?: unknown } | null)?.code === 13
        if ((error && !shutdownOnly) || !Number.isFinite(ms)) reject(new Error(`cold start failed: ${error?.message ?? ''} ${stderr}`))
        else resolve(ms)
      })
    })
  } finally {
    await rm(file, { force: true })
  }
}

export async function benchPool({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  if (only && !only.test('pool')) return []
  const rows: Row[] = []
  const subs = subjects()
  const trivialJobs: Job[] = Array.from({ length: TRIVIAL }, (_, x) => ({ op: 'double', x }))
  const cpuJobs: Job[] = Array.from({ length: CPU_TASKS }, () => ({ op: 'spin', ms: CPU_MS }))

  log('pool: start-up to first result, first pool of a fresh process')
  const cold = await interleaved(COLD.map(([, script]) => () => coldStart(script)), RUNS)
  COLD.forEach(([name], k) => rows.push(row('pool start-up to first result, first pool of a fresh process', name, 'ms', 1, cold[k])))

  log('pool: start-up to first result, a later pool')
  const startup = await interleaved(subs.map(laterStart), RUNS)
  subs.forEach((s, k) => rows.push(row('pool start-up to first result, a later pool', s.name.replace(/ \w+$/, ''), 'ms', 1, startup[k])))

  for (const s of subs) await s.start()
  try {
    log('pool: 20,000 trivial tasks, coro_map with default chunking')
    const aioPool = new AioPool({ processes: WORKERS })
    try {
      const xs = Array.from({ length: TRIVIAL }, (_, i) => i)
      const [mapMs] = await interleaved([async () => timed(async () => {
        const got = await aioPool.coro_map((x: number) => x * 2, xs)
        check(got, trivialJobs)
      })], RUNS)
      rows.push(row('20,000 trivial tasks, map with default chunking', 'aioprocessing-ts AioPool coro_map', 'tasks/s', TRIVIAL, mapMs.map((ms) => (TRIVIAL * 1000) / ms)))
      const [cpuMapMs] = await interleaved([async () => timed(async () => {
        const got = await aioPool.coro_map({ module: TASK_MODULE, name: 'spin' }, cpuJobs.map(() => CPU_MS))
        if (got.length !== CPU_TASKS) throw new Error('lost CPU tasks')
      })], RUNS)
      rows.push(row(`${CPU_TASKS} CPU tasks of ${CPU_MS} ms, wall ÷ ideal ${IDEAL_MS} ms`, 'aioprocessing-ts AioPool coro_map (default chunking)', '× ideal', CPU_TASKS, cpuMapMs.map((ms) => ms / IDEAL_MS)))
    } finally {
      aioPool.terminate()
      await aioPool.coro_join()
    }

    log('pool: 20,000 trivial tasks, one call each, all in flight')
    const each = await interleaved(subs.map((s) => async () => timed(async () => check(await s.each(trivialJobs), trivialJobs))), RUNS)
    subs.forEach((s, k) => rows.push(row('20,000 trivial tasks, one call each', s.name, 'tasks/s', TRIVIAL, each[k].map((ms) => (TRIVIAL * 1000) / ms))))

    log(`pool: ${CPU_TASKS} CPU tasks of ${CPU_MS} ms, one call each`)
    const cpu = await interleaved(subs.map((s) => async () => timed(async () => check(await s.each(cpuJobs), cpuJobs))), RUNS)
    subs.forEach((s, k) => rows.push(row(`${CPU_TASKS} CPU tasks of ${CPU_MS} ms, wall ÷ ideal ${IDEAL_MS} ms`, s.name, '× ideal', CPU_TASKS, cpu[k].map((ms) => ms / IDEAL_MS))))
  } finally {
    for (const s of subs) await s.stop()
  }

  log('pool: Python multiprocessing.Pool')
  const runs = await runPythonPool(['fork'])
  if (!(runs instanceof Error)) {
    const py = runs.fork
    rows.push(row('pool start-up to first result, a later pool', 'Python multiprocessing.Pool (fork)', 'ms', 1, py.startup))
    rows.push(row('20,000 trivial tasks, map with default chunking', 'Python Pool.map', 'tasks/s', TRIVIAL, py.map.map((ms) => (TRIVIAL * 1000) / ms)))
    rows.push(row('20,000 trivial tasks, one call each', 'Python Pool.apply_async', 'tasks/s', TRIVIAL, py.apply_async.map((ms) => (TRIVIAL * 1000) / ms)))
    rows.push(row(`${CPU_TASKS} CPU tasks of ${CPU_MS} ms, wall ÷ ideal ${IDEAL_MS} ms`, 'Python Pool.map (default chunking)', '× ideal', CPU_TASKS, py.cpu_map.map((ms) => ms / IDEAL_MS)))
  } else log(`pool: python3 failed (${runs.message}); no Python rows`)
  return rows
}
