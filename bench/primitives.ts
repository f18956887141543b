// Micro-benchmarks of the shared primitives against a raw Atomics baseline and Python peers.
// Every figure is the median of RUNS measured runs after one warm-up run; min–max is reported too.

import { Worker } from 'node:worker_threads'
import { AioEvent, AioLock, AioProcess, AioRLock, AioSemaphore, AioValue } from '../generated/index.generated.js'
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
  /** Anything odd seen while measuring, printed under the table. */
  notes?: string[]
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

export function row(benchmark: string, implementation: string, unit: string, n: number, values: number[]): Row {
  const s = [...values].sort((x, y) => x - y)
  const mid = s.length >> 1
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  const failed = values.some(Number.isNaN) ? { notes: ['failed in this run: see the bench log'] } : {}
  return { benchmark, implementation, median, min: s[0], max: s[s.length - 1], unit, n, runs: values.length, samples: values, ...failed }
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

/**
 * Round-robin runs: run r of every implementation before run r+1 of any, so a slow spell of the
 * shared machine is spread over all rows instead of landing on one. Run 0 is a warm-up.
 */
/**
 * A run not done in this long failed. Its pending timer also keeps the process alive: a run whose
 * promise never settled, with nothing else holding the loop, ended the whole bench (exit 13).
 */
const RUN_BOUND_MS = 180_000

export async function interleaved(impls: Array<() => Promise<number>>, runs = RUNS): Promise<number[][]> {
  const out = impls.map((): number[] => [])
  const failed = new Set<number>()
  for (let r = 0; r <= runs; r++) {
    for (const [k, run] of impls.entries()) {
      if (failed.has(k)) continue
      let timer: ReturnType<typeof setTimeout> | undefined
      const bound = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`a run did not finish within ${RUN_BOUND_MS / 1000} s`)), RUN_BOUND_MS)))
      try {
        const ms = await Promise.race([run(), bound])
        if (r > 0) out[k].push(ms)
      } catch (error) {
        // The other implementations go on; this one's row says it failed (NaN, and a note).
        failed.add(k)
        out[k] = [NaN]
        process.stderr.write(`bench: implementation ${k + 1} of ${impls.length} failed: ${(error as Error)?.message ?? error}\n`)
      } finally {
        clearTimeout(timer)
      }
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Uncontended pairs on the main thread; each returns elapsed ms. One loop per type keeps every
// call site monomorphic, and each checks the result so the work cannot be elided.

function timed(loop: () => void): number {
  const t0 = performance.now()
  loop()
  return performance.now() - t0
}

function lockPairs(lock: AioLock, n: number): number {
  return timed(() => {
    for (let i = 0; i < n; i++) {
      if (!lock.acquire()) throw new Error('acquire failed')
      lock.release()
    }
  })
}

function rlockPairs(lock: AioRLock, n: number): number {
  return timed(() => {
    for (let i = 0; i < n; i++) {
      if (!lock.acquire()) throw new Error('acquire failed')
      lock.release()
    }
  })
}

function semaphorePairs(sem: AioSemaphore, n: number): number {
  return timed(() => {
    for (let i = 0; i < n; i++) {
      if (!sem.acquire()) throw new Error('acquire failed')
      sem.release()
    }
  })
}

async function coroLockPairs(lock: AioLock, n: number): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    if (!(await lock.coro_acquire())) throw new Error('coro_acquire failed')
    await lock.coro_release()
  }
  return performance.now() - t0
}

// ---------------------------------------------------------------------------------------------
// Event ping-pong: main sets a and waits for b; the worker waits for a, clears it and sets b.
// Each run gets a fresh worker and WARM_TRIPS untimed round trips before the timed ones, so thread
// start-up is never timed and every run draws its own thread placement (on a 2-vCPU VM the
// figure depends heavily on whether both threads share a CPU).

const WARM_TRIPS = 1_000

// Only the waiting side clears its event, so a wait() that returns true while the event is still
// clear had no set() during it: a spurious wake-up. Both sides count those and wait again, so the
// protocol stays in step. runtime/event.ts can produce them: set() stores FLAG before it bumps SEQ,
// so a waiter that already took the FLAG can see that late SEQ bump during its next wait().

// Shipped as source into the worker: it must stay self-contained.
function pong(a: AioEvent, b: AioEvent, total: number, timeoutMs: number, spurious: AioValue): void {
  for (let i = 0; i < total; i++) {
    for (;;) {
      if (!a.wait(timeoutMs)) throw new Error(`ping ${i} timed out`)
      if (a.isSet()) break
      spurious.value = (spurious.value as number) + 1
    }
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

interface Tally {
  spurious: number
}

async function eventPingPongRun(style: 'blocking' | 'coro', n: number, tally: Tally): Promise<number> {
  const a = new AioEvent()
  const b = new AioEvent()
  const workerSpurious = new AioValue('i', 0, { lock: false })
  const p = new AioProcess({ target: pong, args: [a, b, WARM_TRIPS + n, TIMEOUT_MS, workerSpurious], name: `pong-${style}` })
  p.start()
  try {
    // Two loops rather than one with a branch: the blocking one must not await per trip.
    let ms: number
    if (style === 'blocking') {
      const trips = (count: number): void => {
        for (let i = 0; i < count; i++) {
          a.set()
          for (;;) {
            if (!b.wait(TIMEOUT_MS)) throw new Error(`pong ${i} timed out`)
            if (b.isSet()) break
            tally.spurious++
          }
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
        for (;;) {
          if (!(await b.coro_wait(TIMEOUT_MS))) throw new Error(`pong ${i} timed out`)
          if (b.isSet()) break
          tally.spurious++
        }
        b.clear()
      }, n)
    }
    await p.coro_join(TIMEOUT_MS)
    if (p.exitcode !== 0) throw new Error(`pong process ended with exitcode ${p.exitcode}`)
    tally.spurious += workerSpurious.value as number
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
  const steps: Array<[name: string, run: () => Promise<Row[]>]> = [
    ['Uncontended pairs', async () => {
      const [lock, coroLock, rlock, sem] = [new AioLock(), new AioLock(), new AioRLock(), new AioSemaphore(1)]
      const [l, c, r, s] = await interleaved([
        async () => lockPairs(lock, N.lockPairs),
        () => coroLockPairs(coroLock, N.coroPairs),
        async () => rlockPairs(rlock, N.lockPairs),
        async () => semaphorePairs(sem, N.lockPairs),
      ])
      return [
        ...pairRows(lockBench, `${TS} acquire()/release()`, N.lockPairs, l),
        ...pairRows(lockBench, `${TS} await coro_acquire()/coro_release()`, N.coroPairs, c),
        ...pairRows(`RLock ${PAIR}`, `${TS} acquire()/release()`, N.lockPairs, r),
        ...pairRows(`Semaphore(1) ${PAIR}`, `${TS} acquire()/release()`, N.lockPairs, s),
      ]
    }],
    ['Event ping-pong', async () => {
      const n = N.pingPong
      const tallies: [Tally, Tally] = [{ spurious: 0 }, { spurious: 0 }]
      const [blocking, coro, raw, rawAsync] = await interleaved([
        () => eventPingPongRun('blocking', n, tallies[0]),
        () => eventPingPongRun('coro', n, tallies[1]),
        () => rawPingPongRun('wait', n),
        () => rawPingPongRun('waitAsync', n),
      ])
      const trips = (RUNS + 1) * (WARM_TRIPS + n)
      const noted = (rows: Row[], t: Tally): Row[] =>
        t.spurious === 0
          ? rows
          : rows.map((r) => ({ ...r, notes: [`${t.spurious} spurious Event wake-up(s) in ${trips.toLocaleString('en-US')} round trips: wait() returned true with no set() during it`] }))
      return [
        ...noted(tripRows(pingBench, `${TS} blocking b.wait()`, n, blocking), tallies[0]),
        ...noted(tripRows(pingBench, `${TS} await b.coro_wait()`, n, coro), tallies[1]),
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
