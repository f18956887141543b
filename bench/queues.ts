// Queue benchmarks: one producer worker → the main thread, against Node's raw postMessage and
// Python's multiprocessing.Queue in the same run; then what an idle queue costs in memory and
// whether a queue that held 1 GiB gives it back once drained.
//
// Throughput is timed from the moment the first item is got to the moment the sentinel (null)
// after the last one is got: worker start-up is never timed, and the items after the first are
// counted. Every item is checked (index and shape), and the sentinel must come right after the
// N-th item, so the count received equals the count sent. Every wait has a TIMEOUT_MS bound.

import { execFile } from 'node:child_process'
import { freemem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { AioProcess, AioQueue, AioValue } from '../generated/index.generated.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'
import { runPythonQueuePeers, type PythonQueueSamples } from './python-queue-peers.js'

const RUNS = 5
/** Each held-memory run moves 1 GiB through the queue twice and takes seconds: fewer of those. */
const HELD_RUNS = 3
const TIMEOUT_MS = 60_000
const MIB = 1 << 20
// Objects use fewer items than ints: when the queue falls into its feeder regime (see the notes it
// prints) they pass at 2,000-30,000/s, and the queue steps must stay within about two minutes.
const N = {
  small: { int: 200_000, object: 50_000 },
  mib: 256,
  pySmall: 50_000,
  pyAioSmall: 5_000,
  pyMib: 128,
  idleQueues: 1_000,
  // 1 GiB held, or 512 MiB where the machine cannot spare 1 GiB twice over (the run says which).
  heldMib: freemem() > 3 * 2 ** 30 ? 1_024 : 512,
}
/** A ring that holds a whole 1 MiB record: shows what the 32 KiB default costs large items. */
const BIG_RING = 4 * MIB

const TS = 'aioprocessing-ts AioQueue'
const PY_AIO = 'Python aioprocessing-style await coro_get() (run_in_executor)'
const TARGET = { blocking: 1_000_000, coro: 300_000, mbps: 1_000, idleBytes: 64 * 1024 }

type Kind = 'int' | 'object' | 'bytes'
type Style = 'blocking' | 'coro'
interface Item {
  id: number
  name: string
  price: number
  ok: boolean
  tags: string[]
}

/** Whether `v` is the i-th item of its kind (the producer makes the same sequence). */
const CHECK: Record<Kind, (v: unknown, i: number) => boolean> = {
  int: (v, i) => v === i,
  object: (v, i) => (v as Item).id === i && (v as Item).tags.length === 2,
  bytes: (v, i) => v instanceof Uint8Array && v.length === MIB && v[0] === (i & 255),
}

// ---------------------------------------------------------------------------------------------
// aioprocessing-ts: a producer process puts, the main thread gets.

// Shipped as source into the worker: it must stay self-contained.
function produce(q: AioQueue<unknown>, kind: string, n: number, timeoutMs: number, spentMs: AioValue): void {
  const t0 = performance.now()
  if (kind === 'int') {
    for (let i = 0; i < n; i++) q.put(i, true, timeoutMs)
  } else if (kind === 'object') {
    for (let i = 0; i < n; i++) q.put({ id: i, name: `item-${i}`, price: i + 0.5, ok: (i & 1) === 0, tags: ['red', 'sale'] }, true, timeoutMs)
  } else {
    const item = new Uint8Array(1 << 20)
    for (let i = 0; i < n; i++) {
      item[0] = i & 255 // put() copies the item, so one buffer serves
      q.put(item, true, timeoutMs)
    }
  }
  spentMs.value = performance.now() - t0
  q.put(null, true, timeoutMs)
}

function drainBlocking(q: AioQueue<unknown>, n: number, check: (v: unknown, i: number) => boolean): number {
  if (!check(q.get(true, TIMEOUT_MS), 0)) throw new Error('item 0 is wrong')
  const t0 = performance.now()
  for (let i = 1; i < n; i++) {
    if (!check(q.get(true, TIMEOUT_MS), i)) throw new Error(`item ${i} is wrong`)
  }
  if (q.get(true, TIMEOUT_MS) !== null) throw new Error(`no sentinel after item ${n - 1}`)
  return performance.now() - t0
}

async function drainCoro(q: AioQueue<unknown>, n: number, check: (v: unknown, i: number) => boolean): Promise<number> {
  if (!check(await q.coro_get(true, TIMEOUT_MS), 0)) throw new Error('item 0 is wrong')
  const t0 = performance.now()
  for (let i = 1; i < n; i++) {
    if (!check(await q.coro_get(true, TIMEOUT_MS), i)) throw new Error(`item ${i} is wrong`)
  }
  if ((await q.coro_get(true, TIMEOUT_MS)) !== null) throw new Error(`no sentinel after item ${n - 1}`)
  return performance.now() - t0
}

/** One run: a fresh queue and producer; returns the consumer's ms and adds the producer's to `producerMs`. */
async function queueRun(kind: Kind, style: Style, n: number, producerMs: number[], bufferSize?: number): Promise<number> {
  const q = new AioQueue<unknown>(0, bufferSize ? { bufferSize } : {})
  const spent = new AioValue('d', 0, { lock: false })
  const p = new AioProcess({ target: produce, args: [q, kind, n, TIMEOUT_MS, spent], name: `produce-${kind}` })
  p.start()
  try {
    const ms = style === 'blocking' ? drainBlocking(q, n, CHECK[kind]) : await drainCoro(q, n, CHECK[kind])
    await p.coro_join(TIMEOUT_MS)
    if (p.exitcode !== 0) throw new Error(`producer ended with exitcode ${p.exitcode}`)
    if (q.qsize() !== 0) throw new Error(`qsize() is ${q.qsize()} after the sentinel`)
    producerMs.push(spent.value as number)
    return ms
  } finally {
    if (p.isAlive()) {
      p.terminate()
      await p.coro_join(TIMEOUT_MS)
    }
    // A producer that outlived even terminate() must not hide the error that got us here.
    if (!p.isAlive()) p.close()
    q.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Baseline: the same items posted by a raw Worker to the main thread, counted in 'message' events.

const POST = `
const { parentPort, workerData } = require('node:worker_threads')
const { kind, n, transfer } = workerData
if (kind === 'int') {
  for (let i = 0; i < n; i++) parentPort.postMessage(i)
} else if (kind === 'object') {
  for (let i = 0; i < n; i++) parentPort.postMessage({ id: i, name: 'item-' + i, price: i + 0.5, ok: (i & 1) === 0, tags: ['red', 'sale'] })
} else if (transfer) {
  for (let i = 0; i < n; i++) {
    const item = new Uint8Array(1 << 20)
    item[0] = i & 255
    parentPort.postMessage(item, [item.buffer])
  }
} else {
  const item = new Uint8Array(1 << 20)
  for (let i = 0; i < n; i++) {
    item[0] = i & 255
    parentPort.postMessage(item)
  }
}
parentPort.postMessage(null)
`

function postRun(kind: Kind, n: number, transfer = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(POST, { eval: true, workerData: { kind, n, transfer } })
    const check = CHECK[kind]
    let i = 0
    let t0 = 0
    let done = false
    const finish = (error: unknown, ms = 0): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      worker.removeAllListeners('message')
      void worker.terminate().then(() => (error ? reject(error) : resolve(ms)), reject)
    }
    const timer = setTimeout(() => finish(new Error(`postMessage run timed out after ${i} of ${n} items`)), TIMEOUT_MS)
    worker.on('message', (v: unknown) => {
      if (v === null) {
        finish(i === n ? undefined : new Error(`sentinel after ${i} of ${n} items`), performance.now() - t0)
        return
      }
      if (i === 0) t0 = performance.now()
      if (!check(v, i)) finish(new Error(`item ${i} is wrong`))
      i++
    })
    worker.on('error', finish)
    // Messages posted before the exit still arrive; only a failed exit is an error here.
    worker.on('exit', (code) => {
      if (code !== 0) finish(new Error(`postMessage worker exited with ${code}`))
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Memory, measured in child processes started with --expose-gc.

const MEMORY_CHILD = fileURLToPath(new URL('./queue-memory.js', import.meta.url))

function memoryChild<T>(mode: 'idle' | 'held', count: number): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', MEMORY_CHILD, mode, String(count), String(TIMEOUT_MS)], { timeout: 2 * TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`queue-memory ${mode} failed: ${error.message.split('\n')[0]} ${stderr.trim().split('\n').slice(-3).join(' / ')}`))
      try {
        resolve(JSON.parse(stdout) as T)
      } catch {
        reject(new Error(`queue-memory ${mode} printed no JSON: ${stdout.slice(0, 200)}`))
      }
    })
  })
}

interface IdleSample {
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

interface HeldSample {
  base: number
  held: number
  drained: number
  putMs: number
  drainMs: number
  maxRss: number
}

// ---------------------------------------------------------------------------------------------

function median(values: number[]): number {
  const s = [...values].sort((x, y) => x - y)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const fmtRate = (v: number): string => Math.round(v).toLocaleString('en-US')

/** Rows in items/s from ms per run; `n` items per run, of which n - 1 are timed. */
function itemRows(benchmark: string, implementation: string, n: number, ms: number[], target?: number, notes: string[] = []): Row {
  const r = row(benchmark, implementation, 'items/s', n, ms.map((t) => ((n - 1) * 1e3) / t))
  return withNotes(r, target, 'items/s', notes)
}

/** Rows in MB/s (1 MB = 1e6 bytes) from ms per run of `n` 1 MiB items, of which n - 1 are timed. */
function mbRows(benchmark: string, implementation: string, n: number, ms: number[], target?: number, notes: string[] = []): Row {
  const r = row(benchmark, implementation, 'MB/s', n, ms.map((t) => ((n - 1) * MIB) / 1e3 / t))
  return withNotes(r, target, 'MB/s', notes)
}

function withNotes(r: Row, target: number | undefined, unit: string, notes: string[]): Row {
  const all = [...notes]
  if (target !== undefined && r.median < target) all.push(`median misses the target of ≥ ${fmtRate(target)} ${unit}`)
  // Runs that differ several-fold are two regimes, not noise: say so rather than hide it in the median.
  if (r.max > 3 * r.min) all.push(`runs split into fast and slow regimes (${r.samples.map(fmtRate).join(', ')} ${unit})`)
  return all.length ? { ...r, notes: all } : r
}

function producerNote(n: number, ms: number[]): string {
  return `producer put() loop alone: median ${fmtRate((n * 1e3) / median(ms))} items/s`
}

function pythonItemRow(benchmark: string, implementation: string, s: PythonQueueSamples): Row {
  // The Python script times n - 1 items after the first plus the sentinel, as the Node side does.
  return itemRows(benchmark, implementation, s.n, s.ns.map((ns) => ns / 1e6))
}

export async function benchQueues({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  const kinds: Array<[kind: 'int' | 'object', benchmark: string]> = [
    ['int', 'Queue worker → main, small ints'],
    ['object', 'Queue worker → main, 5-field objects'],
  ]
  const mibBench = 'Queue worker → main, 1 MiB Uint8Array (1 MB = 10⁶ bytes)'
  const idleBench = `Idle unbounded AioQueue (${N.idleQueues.toLocaleString('en-US')} kept, after gc)`
  const heldBench = `AioQueue holding ${N.heldMib.toLocaleString('en-US')} × 1 MiB (no consumer), then drained`
  const steps: Array<[name: string, run: () => Promise<Row[]>]> = [
    ['Queue small items', async () => {
      const rows: Row[] = []
      for (const [kind, benchmark] of kinds) {
        const n = N.small[kind]
        const producer: [number[], number[]] = [[], []]
        const [blocking, coro, post] = await interleaved(
          [() => queueRun(kind, 'blocking', n, producer[0]), () => queueRun(kind, 'coro', n, producer[1]), () => postRun(kind, n)],
          RUNS,
        )
        rows.push(
          itemRows(benchmark, `${TS} put() → blocking get()`, n, blocking, TARGET.blocking, [producerNote(n, producer[0])]),
          itemRows(benchmark, `${TS} put() → await coro_get()`, n, coro, TARGET.coro, [producerNote(n, producer[1])]),
          itemRows(benchmark, "Node postMessage → 'message' events (baseline)", n, post),
        )
      }
      return rows
    }],
    ['Queue 1 MiB items', async () => {
      const n = N.mib
      const producer: [number[], number[]] = [[], []]
      const [ring, bigRing, copy, transfer] = await interleaved(
        [
          () => queueRun('bytes', 'blocking', n, producer[0]),
          () => queueRun('bytes', 'blocking', n, producer[1], BIG_RING),
          () => postRun('bytes', n),
          () => postRun('bytes', n, true),
        ],
        RUNS,
      )
      const mbNote = (ms: number[]): string => `producer put() loop alone: median ${fmtRate(((n * MIB) / 1e3) / median(ms))} MB/s`
      return [
        mbRows(mibBench, `${TS} put() → blocking get(), default 32 KiB ring`, n, ring, TARGET.mbps, [mbNote(producer[0])]),
        mbRows(mibBench, `${TS} put() → blocking get(), bufferSize 4 MiB`, n, bigRing, undefined, [mbNote(producer[1])]),
        mbRows(mibBench, "Node postMessage (copy) → 'message' events (baseline)", n, copy),
        mbRows(mibBench, 'Node postMessage, ArrayBuffer transferred (baseline)', n, transfer),
      ]
    }],
    // Python runs alone, after the Node figures: on a 2-core box it would steal a core from them.
    ['Queue Python peers', async () => {
      const py = await runPythonQueuePeers({ runs: RUNS, timeoutMs: TIMEOUT_MS, n: { small: N.pySmall, aioSmall: N.pyAioSmall, mib: N.pyMib } }, 5 * TIMEOUT_MS)
      if ('error' in py) {
        log(`Queue Python peers skipped: ${py.error}`)
        return []
      }
      const mp = `Python ${py.version} multiprocessing.Queue`
      return [
        pythonItemRow(kinds[0][1], `${mp} put() → get(), 2 processes`, py.int),
        pythonItemRow(kinds[0][1], `${PY_AIO}, 2 processes`, py.aioInt),
        pythonItemRow(kinds[1][1], `${mp} put() → get() of dicts, 2 processes`, py.dict),
        pythonItemRow(kinds[1][1], `${PY_AIO} of dicts, 2 processes`, py.aioDict),
        mbRows(mibBench, `${mp} put() → get() of bytes, 2 processes`, py.mib.n, py.mib.ns.map((ns) => ns / 1e6)),
      ]
    }],
    ['Queue memory', async () => {
      const idle: IdleSample[] = []
      for (let r = 0; r < RUNS; r++) idle.push(await memoryChild<IdleSample>('idle', N.idleQueues))
      const per = (f: (s: IdleSample) => number): number[] => idle.map((s) => f(s) / N.idleQueues)
      const overTarget = (r: Row, notes: string[] = []): Row => {
        const all = r.median > TARGET.idleBytes ? [...notes, `median is above the ≤ ${fmtRate(TARGET.idleBytes)} bytes/queue target`] : notes
        return all.length ? { ...r, notes: all } : r
      }
      const rows: Row[] = [
        overTarget(row(idleBench, `${TS}: process RSS delta`, 'bytes/queue', N.idleQueues, per((s) => s.rss)), [
          'each run in a fresh node --expose-gc process',
        ]),
        // Node counts SharedArrayBuffers in arrayBuffers but not in external, so both are added.
        overTarget(row(idleBench, `${TS}: heapUsed + arrayBuffers delta`, 'bytes/queue', N.idleQueues, per((s) => s.heapUsed + s.arrayBuffers)), [
          `of which arrayBuffers (the shared ring + header): median ${fmtRate(median(per((s) => s.arrayBuffers)))} bytes/queue; external: median ${fmtRate(median(per((s) => s.external)))} bytes/queue`,
        ]),
      ]
      const held: HeldSample[] = []
      for (let r = 0; r < HELD_RUNS; r++) held.push(await memoryChild<HeldSample>('held', N.heldMib))
      const mib = (f: (s: HeldSample) => number): number[] => held.map((s) => f(s) / MIB)
      const base = median(mib((s) => s.base))
      const heldNotes = [
        `each run in a fresh node --expose-gc process; baseline RSS (supervisor started, before the puts) median ${fmtRate(base)} MiB`,
        `put() of all ${N.heldMib} items: median ${fmtRate(median(held.map((s) => s.putMs)))} ms; draining them with get(): median ${fmtRate(median(held.map((s) => s.drainMs)))} ms`,
      ]
      return [
        ...rows,
        { ...row(heldBench, `${TS}: RSS above baseline while held`, 'MiB', N.heldMib, mib((s) => s.held - s.base)), notes: heldNotes },
        {
          ...row(heldBench, `${TS}: RSS above baseline after drain, 1 s idle, gc()`, 'MiB', N.heldMib, mib((s) => s.drained - s.base)),
          notes: ['gc() collects the heap of the thread that calls it (main), not the supervisor thread the feeder runs in'],
        },
        row(heldBench, `${TS}: peak RSS above baseline`, 'MiB', N.heldMib, mib((s) => s.maxRss - s.base)),
      ]
    }],
  ]
  const rows: Row[] = []
  for (const [name, run] of steps) {
    if (only && !only.test(name)) continue
    log(name)
    const t0 = performance.now()
    rows.push(...(await run()))
    // The feeder regime makes some runs 10-50x slower: say where the time went.
    log(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  return rows
}
