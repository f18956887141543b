// Micro-benchmarks of the shared primitives against a raw Atomics baseline and Python peers.
// Every figure is the median of RUNS measured runs after one warm-up run; min–max is reported too.

import { Worker } from 'node:worker_threads'
import { AioEvent, AioLock, AioProcess, AioRLock, AioSemaphore } from '../generated/index.generated.js'
import { runPythonPeers, type PythonSamples } from './python-peers.js'

export interface Row {
  benchmark: string
  implementation: string
  median: number
  min: number
  max: number
  unit: string
  /** Operations timed per run (pairs or round trips). */
  n: number
  runs: number
  /** Every measured value, in run order (for spotting drift). */
  samples: number[]
}

const RUNS = 7
const TIMEOUT_MS = 30_000
const N = {
  lockPairs: 2_000_000,
  coroPairs: 1_000_000,
  pingPong: 20_000,
  pyLockPairs: 1_000_000,
  pyAioLockPairs: 3_000,
  pyPingPong: 5_000,
  pyAioPingPong: 3_000,
}

const TS = 'aioprocessing-ts'
const PY_AIO = 'Python aioprocessing-style (run_in_executor)'
const PAIR = 'acquire+release pair, uncontended'

/** Elapsed ms of each measured run; run 0 is a warm-up and is dropped. */
async function measure(run: () => void | Promise<void>): Promise<number[]> {
  const out: number[] = []
  for (let r = 0; r <= RUNS; r++) {
    const t0 = performance.now()
    await run()
    const ms = performance.now() - t0
    if (r > 0) out.push(ms)
  }
  return out
}

function row(benchmark: string, implementation: string, unit: string, n: number, values: number[]): Row {
  const s = [...values].sort((x, y) => x - y)
  const mid = s.length >> 1
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { benchmark, implementation, median, min: s[0], max: s[s.length - 1], unit, n, runs: values.length, samples: values }
}

/** Two rows for a pair benchmark: ns per pair and pairs per second, from elapsed ms per run. */
function pairRows(benchmark: string, implementation: string, n: number, ms: number[]): Row[] {
  return [
    row(benchmark, implementation, 'ns/pair', n, ms.map((t) => (t * 1e6) / n)),
    row(benchmark, implementation, 'pairs/s', n, ms.map((t) => (n * 1e3) / t)),
  ]
}

function tripRows(benchmark: string, implementation: string, n: number, ms: number[]): Row[] {
  return [row(benchmark, implementation, 'round trips/s', n, ms.map((t) => (n * 1e3) / t))]
}

// ---------------------------------------------------------------------------------------------
// Uncontended pairs on the main thread. Each loop checks the result so the work cannot be elided.

function blockingPairs(o: { acquire(): boolean; release(): void }, n: number): void {
  for (let i = 0; i < n; i++) {
    if (!o.acquire()) throw new Error('acquire failed')
    o.release()
  }
}

async function coroPairs(lock: AioLock, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (!(await lock.coro_acquire())) throw new Error('coro_acquire failed')
    await lock.coro_release()
  }
}

// ---------------------------------------------------------------------------------------------
// Event ping-pong: main sets a and waits for b; the worker waits for a, clears it and sets b.
// Each run gets a fresh worker and WARM_TRIPS untimed round trips before the timed ones, so thread
// start-up is never timed and every run draws its own thread placement (on a 2-vCPU VM the
// figure depends heavily on whether both threads share a CPU).

const WARM_TRIPS = 2_000

// Shipped as source into the worker: it must stay self-contained.
function pong(a: AioEvent, b: AioEvent, total: number, timeoutMs: number): void {
  for (let i = 0; i < total; i++) {
    if (!a.wait(timeoutMs)) throw new Error(`ping ${i} timed out`)
    a.clear()
    b.set()
  }
}

/** Awaits WARM_TRIPS untimed then `n` timed calls of `trip`; returns the timed ms. */
async function timedTrips(trip: (i: number) => void | Promise<void>, n: number): Promise<number> {
  for (let i = 0; i < WARM_TRIPS; i++) await trip(i)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await trip(i)
  return performance.now() - t0
}

async function eventPingPongRun(style: 'blocking' | 'coro', n: number): Promise<number> {
  const a = new AioEvent()
  const b = new AioEvent()
  const p = new AioProcess({ target: pong, args: [a, b, WARM_TRIPS + n, TIMEOUT_MS], name: `pong-${style}` })
  p.start()
  try {
    // Two loops rather than one with a branch: the blocking one must not await per trip.
    let ms: number
    if (style === 'blocking') {
      const trips = (count: number): void => {
        for (let i = 0; i < count; i++) {
          a.set()
          if (!b.wait(TIMEOUT_MS)) throw new Error(`pong ${i} timed out`)
          b.clear()
        }
      }
      trips(WARM_TRIPS)
      const t0 = performance.now()
      trips(n)
      ms = performance.now() - t0
    } else {
      ms = await timedTrips(async (i) => {
        a.set()
        if (!(await b.coro_wait(TIMEOUT_MS))) throw new Error(`pong ${i} timed out`)
        b.clear()
      }, n)
    }
    await p.coro_join(TIMEOUT_MS)
    if (p.exitcode !== 0) throw new Error(`pong process ended with exitcode ${p.exitcode}`)
    return ms
  } finally {
    if (p.isAlive()) {
      p.terminate()
      await p.coro_join(TIMEOUT_MS)
    }
    p.close()
  }
}

// Raw baseline: the same protocol over two SharedArrayBuffer words with bare Atomics.wait/notify
// and no spinning. Word A (0) is the ping flag, word B (1) the pong flag.
const RAW_PONG = `
const { workerData } = require('node:worker_threads')
const { sab, total, timeoutMs } = workerData
const i32 = new Int32Array(sab)
for (let i = 0; i < total; i++) {
  while (Atomics.load(i32, 0) === 0) {
    if (Atomics.wait(i32, 0, 0, timeoutMs) === 'timed-out') throw new Error('raw ping ' + i + ' timed out')
  }
  Atomics.store(i32, 0, 0)
  Atomics.store(i32, 1, 1)
  Atomics.notify(i32, 1)
}
`

async function rawPingPongRun(style: 'wait' | 'waitAsync', n: number): Promise<number> {
  const i32 = new Int32Array(new SharedArrayBuffer(8))
  const worker = new Worker(RAW_PONG, { eval: true, workerData: { sab: i32.buffer, total: WARM_TRIPS + n, timeoutMs: TIMEOUT_MS } })
  // Not events.once: it rejects on 'error', possibly before anyone awaits it.
  let failure: unknown
  worker.on('error', (e) => (failure = e))
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
  const ping = (): void => {
    Atomics.store(i32, 0, 1)
    Atomics.notify(i32, 0)
  }
  try {
    let ms: number
    if (style === 'wait') {
      const trips = (count: number): void => {
        for (let i = 0; i < count; i++) {
          ping()
          while (Atomics.load(i32, 1) === 0) {
            if (Atomics.wait(i32, 1, 0, TIMEOUT_MS) === 'timed-out') throw new Error(`raw pong ${i} timed out`)
          }
          Atomics.store(i32, 1, 0)
        }
      }
      trips(WARM_TRIPS)
      const t0 = performance.now()
      trips(n)
      ms = performance.now() - t0
    } else {
      ms = await timedTrips(async (i) => {
        ping()
        while (Atomics.load(i32, 1) === 0) {
          const res = Atomics.waitAsync(i32, 1, 0, TIMEOUT_MS)
          if ((res.async ? await res.value : res.value) === 'timed-out') throw new Error(`raw pong ${i} timed out`)
        }
        Atomics.store(i32, 1, 0)
      }, n)
    }
    const code = await exited
    if (failure !== undefined || code !== 0) throw new Error(`raw pong worker failed (exit ${code}): ${String(failure)}`)
    return ms
  } finally {
    await worker.terminate()
  }
}

/**
 * Round-robin runs: run r of every implementation before run r+1 of any, so a slow spell of the
 * shared machine is spread over all rows instead of landing on one. Run 0 is a warm-up.
 */
async function interleaved(impls: Array<() => Promise<number>>): Promise<number[][]> {
  const out = impls.map((): number[] => [])
  for (let r = 0; r <= RUNS; r++) {
    for (const [k, run] of impls.entries()) {
      const ms = await run()
      if (r > 0) out[k].push(ms)
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------

function pythonRows(benchmark: string, implementation: string, s: PythonSamples, kind: 'pair' | 'trip'): Row[] {
  const ms = s.ns.map((ns) => ns / 1e6)
  return kind === 'pair' ? pairRows(benchmark, implementation, s.n, ms) : tripRows(benchmark, implementation, s.n, ms)
}

export interface BenchOptions {
  /** Called with a line of progress (stderr in run.ts). */
  log?: (line: string) => void
  /** Runs only the steps whose name matches (run.ts: BENCH_ONLY=regex). */
  only?: RegExp
}

export async function benchPrimitives({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  const lockBench = `Lock ${PAIR}`
  const pingBench = 'Event ping-pong main ⇄ worker'
  const lock = new AioLock()
  const steps: Array<[name: string, run: () => Promise<Row[]>]> = [
    ['Lock blocking pairs', async () => pairRows(lockBench, `${TS} acquire()/release()`, N.lockPairs, await measure(() => blockingPairs(lock, N.lockPairs)))],
    ['Lock coro pairs', async () => pairRows(lockBench, `${TS} await coro_acquire()/coro_release()`, N.coroPairs, await measure(() => coroPairs(lock, N.coroPairs)))],
    ['RLock blocking pairs', async () => {
      const rlock = new AioRLock()
      return pairRows(`RLock ${PAIR}`, `${TS} acquire()/release()`, N.lockPairs, await measure(() => blockingPairs(rlock, N.lockPairs)))
    }],
    ['Semaphore blocking pairs', async () => {
      const sem = new AioSemaphore(1)
      return pairRows(`Semaphore(1) ${PAIR}`, `${TS} acquire()/release()`, N.lockPairs, await measure(() => blockingPairs(sem, N.lockPairs)))
    }],
    ['Event ping-pong', async () => {
      const n = N.pingPong
      const [blocking, coro, raw, rawAsync] = await interleaved([
        () => eventPingPongRun('blocking', n),
        () => eventPingPongRun('coro', n),
        () => rawPingPongRun('wait', n),
        () => rawPingPongRun('waitAsync', n),
      ])
      return [
        ...tripRows(pingBench, `${TS} blocking b.wait()`, n, blocking),
        ...tripRows(pingBench, `${TS} await b.coro_wait()`, n, coro),
        ...tripRows(pingBench, 'raw Atomics.wait/notify, Worker (baseline)', n, raw),
        ...tripRows(pingBench, 'raw await Atomics.waitAsync on main (baseline)', n, rawAsync),
      ]
    }],
    // Python runs alone, after the Node figures: on a 2-core box it would steal a core from them.
    ['Python peers', async () => {
      const py = await runPythonPeers(
        {
          runs: RUNS,
          timeoutMs: TIMEOUT_MS,
          warmTrips: WARM_TRIPS,
          n: { lockPairs: N.pyLockPairs, aioLockPairs: N.pyAioLockPairs, eventPingPong: N.pyPingPong, aioEventPingPong: N.pyAioPingPong },
        },
        100_000,
      )
      if ('error' in py) {
        log(`Python peers skipped: ${py.error}`)
        return []
      }
      const mpName = `Python ${py.version} multiprocessing`
      return [
        ...pythonRows(lockBench, `${mpName}.Lock acquire()/release()`, py.lockPairs, 'pair'),
        ...pythonRows(lockBench, `${PY_AIO} coro_acquire()/coro_release()`, py.aioLockPairs, 'pair'),
        ...pythonRows(pingBench, `${mpName}.Event, 2 processes, blocking wait()`, py.eventPingPong, 'trip'),
        ...pythonRows(pingBench, `${PY_AIO} await coro_wait(), 2 processes`, py.aioEventPingPong, 'trip'),
      ]
    }],
  ]
  const rows: Row[] = []
  for (const [name, run] of steps) {
    if (only && !only.test(name)) continue
    log(name)
    rows.push(...(await run()))
  }
  return rows
}
