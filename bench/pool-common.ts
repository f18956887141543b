// What the thread-pool and process-pool benchmarks share: the result check, the timed run, the
// runner that survives a failing peer, and Python's multiprocessing.Pool doing the same work.

import { execFile } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Tinypool from 'tinypool'
import workerpool from 'workerpool'
import type { Job } from './peers/task.js'

export const RUNS = 5
export const WORKERS = 2
export const TRIVIAL = 20_000
export const CPU_TASKS = 200
export const CPU_MS = 5
export const IDEAL_MS = (CPU_TASKS * CPU_MS) / WORKERS
export const TIMEOUT_MS = 120_000
/** The package root: scripts run from there, to resolve the peers. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** A script for a fresh `node` that prints the ms a bare child_process.fork of an empty script takes to its first message. */
export const BARE_FORK = ['a bare child_process.fork of an empty script, to its first message', `import { fork } from 'node:child_process'; import { writeFileSync, rmSync } from 'node:fs'; const f = ${JSON.stringify(join(ROOT, '.bench-empty-child.cjs'))}; writeFileSync(f, "process.send('hi')"); const t = performance.now(); const c = fork(f); await new Promise((r) => c.once('message', r)); console.log(performance.now() - t); c.kill(); rmSync(f, { force: true })`] as const

/** Throws unless every result is right. */
export function check(got: number[], jobs: Job[]): void {
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i]
    if (j.op === 'double' ? got[i] !== j.x * 2 : !(got[i] > 0)) throw new Error(`wrong result for task ${i}: ${got[i]}`)
  }
}

/** The ms `f` takes; a run past TIMEOUT_MS fails. */
export async function timed(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([f(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('bench run timed out')), TIMEOUT_MS)))])
  clearTimeout(timer)
  return performance.now() - t0
}

/** Runs `impls` interleaved, one warm-up round first; one that throws is left out from then on, its error kept. */
export async function tolerant(impls: Array<() => Promise<number>>, runs = RUNS): Promise<Array<number[] | Error>> {
  const out: Array<number[] | Error> = impls.map(() => [])
  for (let r = 0; r <= runs; r++) {
    for (const [k, run] of impls.entries()) {
      if (out[k] instanceof Error) continue
      try {
        const ms = await run()
        if (r > 0) (out[k] as number[]).push(ms)
      } catch (error) {
        out[k] = error as Error
      }
    }
  }
  return out
}

const PYTHON = String.raw`
import json, sys, time
import multiprocessing as mp
RUNS, TRIVIAL, CPU_TASKS, CPU_MS, WORKERS = (int(a) for a in sys.argv[1:6])
METHODS = sys.argv[6].split(',')
now = time.perf_counter

def double(x):
    return x * 2

def spin(ms):
    end = now() + ms / 1000
    n = 0
    while now() < end:
        n += 1
    return n

if __name__ == '__main__':
    out = {}
    for method in METHODS:
        ctx = mp.get_context(method)
        res = out[method] = {'map': [], 'apply_async': [], 'cpu_map': [], 'startup': []}
        for r in range(RUNS + 1):
            t = now()
            with ctx.Pool(WORKERS) as p:
                assert p.apply(double, (1,)) == 2
                started = now() - t
                t = now()
                assert p.map(double, range(TRIVIAL)) == [x * 2 for x in range(TRIVIAL)]
                m = now() - t
                t = now()
                rs = [p.apply_async(double, (x,)) for x in range(TRIVIAL)]
                assert [r.get(120) for r in rs] == [x * 2 for x in range(TRIVIAL)]
                a = now() - t
                t = now()
                assert all(n > 0 for n in p.map(spin, [CPU_MS] * CPU_TASKS))
                c = now() - t
            if r:
                res['startup'].append(started * 1000)
                res['map'].append(m * 1000)
                res['apply_async'].append(a * 1000)
                res['cpu_map'].append(c * 1000)
    print(json.dumps(out))
`

export interface PythonPoolRuns {
  map: number[]
  apply_async: number[]
  cpu_map: number[]
  startup: number[]
}

/** Python's Pool with each start method: ms per run of each benchmark; the error if python3 failed. */
export async function runPythonPool(methods: readonly string[]): Promise<Record<string, PythonPoolRuns> | Error> {
  // A file, not -c: the spawn start method re-imports the main module in each worker.
  const file = join(ROOT, `.bench-pool-${process.pid}.py`)
  await writeFile(file, PYTHON)
  try {
    return await new Promise((resolve) => {
      execFile('python3', [file, String(RUNS), String(TRIVIAL), String(CPU_TASKS), String(CPU_MS), String(WORKERS), methods.join(',')], { timeout: TIMEOUT_MS * 4 }, (error, stdout, stderr) => {
        resolve(error ? new Error(`${error.message} ${stderr}`) : JSON.parse(stdout))
      })
    })
  } finally {
    await rm(file, { force: true })
  }
}

/** One pool under test: what each benchmark needs from it. */
export interface Subject {
  name: string
  start(): Promise<void>
  /** One call per task, all in flight at once. */
  each(jobs: Job[]): Promise<number[]>
  stop(): Promise<void>
}

export const peer = (name: string) => fileURLToPath(new URL(`./peers/${name}.js`, import.meta.url))

/** tinypool with WORKERS threads or processes. */
export function tinypoolSubject(name: string, runtime: 'worker_threads' | 'child_process'): Subject {
  let tiny: Tinypool
  return {
    name,
    start: async () => {
      tiny = new Tinypool({ filename: peer('piscina-worker'), runtime, minThreads: WORKERS, maxThreads: WORKERS })
      await tiny.run({ op: 'double', x: 0 })
    },
    each: (jobs) => Promise.all(jobs.map((j) => tiny.run(j) as Promise<number>)),
    stop: () => tiny.destroy(),
  }
}

/** workerpool with WORKERS threads or processes. */
export function workerpoolSubject(name: string, workerType: 'thread' | 'process'): Subject {
  let wp: ReturnType<typeof workerpool.pool>
  return {
    name,
    start: async () => {
      wp = workerpool.pool(peer('workerpool-worker'), { minWorkers: WORKERS, maxWorkers: WORKERS, workerType })
      await wp.exec('run', [{ op: 'double', x: 0 }])
    },
    each: (jobs) => Promise.all(jobs.map((j) => wp.exec('run', [j]) as unknown as Promise<number>)),
    stop: async () => {
      await wp.terminate()
    },
  }
}

/** One run of "a later pool": the previous pool's background work (spares booting) settled, then a new one to its first result. */
export function laterStart(s: Subject): () => Promise<number> {
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, 300))
    const ms = await timed(() => s.start())
    await s.stop()
    return ms
  }
}
