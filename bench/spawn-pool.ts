// Process pools: AioPool({ context: 'spawn' }) beside tinypool's and workerpool's process pools
// and Python's multiprocessing.Pool (spawn and fork), two workers each, in one run.
//
// (a) 20,000 trivial tasks (x * 2): map with default chunking (Python's rule), then 20,000
//     separate calls in flight at once.
// (b) 200 CPU tasks of 5 ms: wall time against the ideal (200 × 5 ms / 2 workers = 500 ms), one
//     call each and (AioPool, Python) map with default chunking.
// (c) start-up of a fresh process: its first process pool until the first result, beside a bare
//     child_process.fork of an empty script until its first message.
// A peer that fails is reported in a note and its rows left out; the run goes on.

import { AioPool } from '../generated/index.generated.js'
import { row, type BenchOptions, type Row } from './primitives.js'
import { BARE_FORK, CPU_MS, CPU_TASKS, IDEAL_MS, RUNS, TRIVIAL, WORKERS, check, runPythonPool, timed, tolerant, peer, tinypoolSubject, workerpoolSubject, laterStart, type Subject } from './pool-common.js'
import { ENTRY, coldStart } from './pool.js'
import type { Job } from './peers/task.js'


const TASK_MODULE = new URL('./peers/task.js', import.meta.url).href
const TASK = JSON.stringify(TASK_MODULE)
const PEER = (name: string) => JSON.stringify(peer(name))


function subjects(): Subject[] {
  let aio: AioPool
  return [
    {
      name: 'aioprocessing-ts AioPool spawn coro_apply',
      start: async () => {
        aio = new AioPool({ processes: WORKERS, context: 'spawn' })
        await aio.coro_apply({ module: TASK_MODULE, name: 'run' }, [{ op: 'double', x: 0 }])
      },
      each: (jobs) => Promise.all(jobs.map((j) => aio.coro_apply<number>({ module: TASK_MODULE, name: 'run' }, [j]))),
      stop: async () => {
        aio.terminate()
        await aio.coro_join()
      },
    },
    tinypoolSubject("tinypool runtime: 'child_process' run", 'child_process'),
    workerpoolSubject("workerpool workerType: 'process' exec", 'process'),
  ]
}

/** Scripts for a fresh `node`: each prints the ms from before its pool's creation (or fork) to the first result (message). */
const COLD: [string, string][] = [
  ["aioprocessing-ts AioPool({ context: 'spawn' })", `import { AioPool } from ${ENTRY}; const t = performance.now(); const p = new AioPool({ processes: 2, context: 'spawn' }); await p.coro_apply({ module: ${TASK}, name: 'run' }, [{ op: 'double', x: 1 }]); console.log(performance.now() - t); p.terminate()`],
  ["tinypool runtime: 'child_process'", `import Tinypool from 'tinypool'; const t = performance.now(); const p = new Tinypool({ filename: ${PEER('piscina-worker')}, runtime: 'child_process', minThreads: 2, maxThreads: 2 }); await p.run({ op: 'double', x: 1 }); console.log(performance.now() - t); await p.destroy()`],
  // tinypool's children start with no environment unless given one (its env option defaults to
  // nothing: no PATH, no HOME, no NODE_EXTRA_CA_CERTS, whose certificates cost a child ~35 ms of
  // its boot here). This row gives them the parent's, as Python, a bare fork and AioPool do.
  ["tinypool runtime: 'child_process', env: process.env", `import Tinypool from 'tinypool'; const t = performance.now(); const p = new Tinypool({ filename: ${PEER('piscina-worker')}, runtime: 'child_process', env: process.env, minThreads: 2, maxThreads: 2 }); await p.run({ op: 'double', x: 1 }); console.log(performance.now() - t); await p.destroy()`],
  ["workerpool workerType: 'process'", `import workerpool from 'workerpool'; const t = performance.now(); const p = workerpool.pool(${PEER('workerpool-worker')}, { minWorkers: 2, maxWorkers: 2, workerType: 'process' }); await p.exec('run', [{ op: 'double', x: 1 }]); console.log(performance.now() - t); await p.terminate()`],
  ['piscina (threads)', `import { Piscina } from 'piscina'; const t = performance.now(); const p = new Piscina({ filename: ${PEER('piscina-worker')}, minThreads: 2, maxThreads: 2 }); await p.run({ op: 'double', x: 1 }); console.log(performance.now() - t); await p.destroy()`],
  [...BARE_FORK],
]

export async function benchSpawnPool({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  if (only && !only.test('spawn-pool')) return []
  const rows: Row[] = []
  const failed: Row[] = []
  const fail = (benchmark: string, implementation: string, error: Error) => {
    log(`spawn-pool: ${implementation} failed: ${error.message}`)
    failed.push({ ...row(benchmark, implementation, 'failed', 0, [NaN]), notes: [`failed in this run: ${error.message.split('\n')[0]}`] })
  }
  const add = (benchmark: string, name: string, unit: string, n: number, r: number[] | Error, f: (ms: number) => number) =>
    r instanceof Error ? fail(benchmark, name, r) : rows.push(row(benchmark, name, unit, n, r.map(f)))
  const subs = subjects()
  const trivialJobs: Job[] = Array.from({ length: TRIVIAL }, (_, x) => ({ op: 'double', x }))
  const cpuJobs: Job[] = Array.from({ length: CPU_TASKS }, () => ({ op: 'spin', ms: CPU_MS }))

  log('spawn-pool: start-up to first result, first process pool of a fresh process')
  const COLD_TITLE = 'process pool start-up to first result, first pool of a fresh process'
  const cold = await tolerant(COLD.map(([, script]) => () => coldStart(script)), RUNS)
  COLD.forEach(([name], k) => add(COLD_TITLE, name, 'ms', 1, cold[k], (ms) => ms))

  log('spawn-pool: start-up to first result, a later pool')
  const later = await tolerant(subs.map(laterStart), RUNS)
  subs.forEach((s, k) => add('process pool start-up to first result, a later pool', s.name.replace(/ \w+$/, ''), 'ms', 1, later[k], (ms) => ms))

  const started: Subject[] = []
  for (const s of subs) {
    try {
      await s.start()
      started.push(s)
    } catch (error) {
      fail('20,000 trivial tasks, one call each, process pools', s.name, error as Error)
    }
  }
  try {
    log('spawn-pool: 20,000 trivial tasks, coro_map with default chunking')
    const aio = new AioPool({ processes: WORKERS, context: 'spawn' })
    try {
      await aio.coro_apply((x: number) => x, [1])
      const xs = Array.from({ length: TRIVIAL }, (_, i) => i)
      const [map, cpuMap] = await tolerant([
        async () => timed(async () => check(await aio.coro_map((x: number) => x * 2, xs), trivialJobs)),
        async () => timed(async () => {
          const got = await aio.coro_map({ module: TASK_MODULE, name: 'spin' }, cpuJobs.map(() => CPU_MS))
          if (got.length !== CPU_TASKS) throw new Error('lost CPU tasks')
        }),
      ], RUNS)
      add('20,000 trivial tasks, map with default chunking, process pools', "aioprocessing-ts AioPool({ context: 'spawn' }) coro_map", 'tasks/s', TRIVIAL, map, (ms) => (TRIVIAL * 1000) / ms)
      add(`${CPU_TASKS} CPU tasks of ${CPU_MS} ms, wall ÷ ideal ${IDEAL_MS} ms, process pools`, "aioprocessing-ts AioPool({ context: 'spawn' }) coro_map (default chunking)", '× ideal', CPU_TASKS, cpuMap, (ms) => ms / IDEAL_MS)
    } finally {
      aio.terminate()
      await aio.coro_join()
    }

    log('spawn-pool: 20,000 trivial tasks, one call each, all in flight')
    const each = await tolerant(started.map((s) => async () => timed(async () => check(await s.each(trivialJobs), trivialJobs))), RUNS)
    started.forEach((s, k) => add('20,000 trivial tasks, one call each, process pools', s.name, 'tasks/s', TRIVIAL, each[k], (ms) => (TRIVIAL * 1000) / ms))

    log(`spawn-pool: ${CPU_TASKS} CPU tasks of ${CPU_MS} ms, one call each`)
    const cpu = await tolerant(started.map((s) => async () => timed(async () => check(await s.each(cpuJobs), cpuJobs))), RUNS)
    started.forEach((s, k) => add(`${CPU_TASKS} CPU tasks of ${CPU_MS} ms, wall ÷ ideal ${IDEAL_MS} ms, process pools`, s.name, '× ideal', CPU_TASKS, cpu[k], (ms) => ms / IDEAL_MS))
  } finally {
    for (const s of started) await s.stop().catch(() => undefined)
  }

  log('spawn-pool: Python multiprocessing.Pool (spawn, fork)')
  const py = await runPythonPool(['spawn', 'fork'])
  if (py instanceof Error) fail('20,000 trivial tasks, map with default chunking, process pools', 'Python multiprocessing.Pool', py)
  else {
    for (const method of ['spawn', 'fork']) {
      const r = py[method]
      rows.push(row('20,000 trivial tasks, map with default chunking, process pools', `Python Pool.map (${method})`, 'tasks/s', TRIVIAL, r.map.map((ms) => (TRIVIAL * 1000) / ms)))
      rows.push(row('20,000 trivial tasks, one call each, process pools', `Python Pool.apply_async (${method})`, 'tasks/s', TRIVIAL, r.apply_async.map((ms) => (TRIVIAL * 1000) / ms)))
      rows.push(row(`${CPU_TASKS} CPU tasks of ${CPU_MS} ms, wall ÷ ideal ${IDEAL_MS} ms, process pools`, `Python Pool.map (${method}, default chunking)`, '× ideal', CPU_TASKS, r.cpu_map.map((ms) => ms / IDEAL_MS)))
      rows.push(row('process pool start-up to first result, a later pool', `Python multiprocessing.Pool (${method})`, 'ms', 1, r.startup))
    }
  }
  return [...rows, ...failed]
}
