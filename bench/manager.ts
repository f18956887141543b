// Manager and spawn benchmarks: proxy calls through a local AioManager beside Python's
// multiprocessing.Manager() in the same run, and process start to first message, thread vs spawn
// (and Python's fork and spawn). Medians of RUNS runs after one warm-up run.

import { execFile } from 'node:child_process'
import { AioManager, AioProcess, AioQueue, getContext } from '../generated/index.generated.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'
import { ENTRY, coldStart } from './pool.js'
import { BARE_FORK } from './pool-common.js'
import { proxyPairs } from './pairs.js'

const RUNS = 5
const START = 'Process start to first message, a later process (start, the child puts, the parent gets it)'
const COLD_START = 'Process start to first message, the first process of a fresh one'
const N = { queuePairs: 5_000, lockPairs: 5_000, pyPairs: 5_000, starts: 1 }
const TIMEOUT_MS = 120_000

async function timed(f: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

const PYTHON = String.raw`
import json, sys, time
import multiprocessing as mp
RUNS, PAIRS = int(sys.argv[1]), int(sys.argv[2])
now = time.perf_counter

def child(q):
    q.put('hello')

if __name__ == '__main__':
    out = {'queue': [], 'lock': [], 'fork_start': [], 'spawn_start': []}
    with mp.Manager() as m:
        q, lock = m.Queue(), m.Lock()
        for r in range(RUNS + 1):
            t = now()
            for i in range(PAIRS):
                q.put(i)
                assert q.get() == i
            qt = now() - t
            t = now()
            for i in range(PAIRS):
                lock.acquire()
                lock.release()
            lt = now() - t
            if r:
                out['queue'].append(qt * 1000)
                out['lock'].append(lt * 1000)
    for method in ('fork', 'spawn'):
        ctx = mp.get_context(method)
        for r in range(RUNS + 1):
            q = ctx.Queue()
            t = now()
            p = ctx.Process(target=child, args=(q,))
            p.start()
            assert q.get(timeout=60) == 'hello'
            st = now() - t
            p.join()
            if r:
                out[method + '_start'].append(st * 1000)
    print(json.dumps(out))
`

function runPython(): Promise<Record<string, number[]> | undefined> {
  return new Promise((resolve) => {
    // A script file is needed for 'spawn' (it re-imports the main module): write it to stdin's place.
    execFile('python3', ['-c', `import sys, tempfile, runpy, os\nsrc = ${JSON.stringify(PYTHON)}\nd = tempfile.mkdtemp()\np = os.path.join(d, 'bench_manager.py')\nopen(p, 'w').write(src)\nsys.argv = [p] + sys.argv[1:]\ntry:\n    runpy.run_path(p, run_name='__main__')\nfinally:\n    os.remove(p); os.rmdir(d)`, String(RUNS), String(N.pyPairs)], { timeout: TIMEOUT_MS * 2 }, (error, stdout) => {
      resolve(error ? undefined : JSON.parse(stdout))
    })
  })
}

export async function benchManager({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  if (only && !only.test('manager')) return []
  const rows: Row[] = []
  const m = new AioManager()
  m.start()
  try {
    const q = m.Queue()
    const lock = m.Lock()
    log('manager: proxy queue put+get and lock acquire+release pairs')
    const [qb, qc, lb, lc] = await interleaved(proxyPairs(q, lock, N.queuePairs), RUNS)
    const rate = (n: number, ms: number[]) => ms.map((t) => (n * 1000) / t)
    rows.push(row('Manager Queue proxy put+get pairs, one client', 'aioprocessing-ts put()/get()', 'pairs/s', N.queuePairs, rate(N.queuePairs, qb)))
    rows.push(row('Manager Queue proxy put+get pairs, one client', 'aioprocessing-ts await coro_put()/coro_get()', 'pairs/s', N.queuePairs, rate(N.queuePairs, qc)))
    rows.push(row('Manager Lock proxy acquire+release pairs, one client', 'aioprocessing-ts acquire()/release()', 'pairs/s', N.lockPairs, rate(N.lockPairs, lb)))
    rows.push(row('Manager Lock proxy acquire+release pairs, one client', 'aioprocessing-ts await coro_acquire()/coro_release()', 'pairs/s', N.lockPairs, rate(N.lockPairs, lc)))
  } finally {
    m.shutdown()
  }

  log('manager: process start to first message, first process of a fresh one')
  const cold = (method: string) => `import { AioProcess, AioQueue, getContext } from ${ENTRY}
    const ctx = getContext('${method}')
    const q = ctx.AioQueue()
    const t = performance.now()
    const p = ctx.AioProcess({ target: (q) => q.put('hello'), args: [q] })
    p.start()
    if ((await q.coro_get(true, 60000)) !== 'hello') throw new Error('no message')
    console.log(performance.now() - t)
    p.join()`
  // A bare fork beside them: the spawn context's target is 2× it, in the same run.
  const [threadCold, spawnCold, forkCold] = await interleaved([() => coldStart(cold('thread')), () => coldStart(cold('spawn')), () => coldStart(BARE_FORK[1])], RUNS)
  rows.push(row(COLD_START, 'aioprocessing-ts thread context', 'ms', 1, threadCold))
  rows.push(row(COLD_START, 'aioprocessing-ts spawn context', 'ms', 1, spawnCold))
  rows.push(row(COLD_START, BARE_FORK[0], 'ms', 1, forkCold))

  log('manager: process start to first message, thread vs spawn')
  const ctx = getContext('spawn')
  const spawnQueue = ctx.AioQueue<string>()
  const threadQueue = new AioQueue<string>()
  // Each run after a pause: the spares that the previous start asked for are booted by then.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 600))
  const [threadStart, spawnStart] = await interleaved([
    async () => {
      await settle()
      return timed(async () => {
        const p = new AioProcess({ target: (q: AioQueue<string>) => q.put('hello'), args: [threadQueue] })
        p.start()
        if ((await threadQueue.coro_get(true, TIMEOUT_MS)) !== 'hello') throw new Error('no message')
        p.join(TIMEOUT_MS)
      })
    },
    async () => {
      await settle()
      return timed(async () => {
        const p = ctx.AioProcess({ target: (q: { put(x: string): void }) => q.put('hello'), args: [spawnQueue] })
        p.start()
        if ((await spawnQueue.coro_get(true, TIMEOUT_MS)) !== 'hello') throw new Error('no message')
        await p.coro_join()
      })
    },
  ], RUNS)
  rows.push(row(START, 'aioprocessing-ts thread context', 'ms', 1, threadStart))
  rows.push(row(START, 'aioprocessing-ts spawn context', 'ms', 1, spawnStart))

  log('manager: Python peers')
  const py = await runPython()
  if (py) {
    rows.push(row('Manager Queue proxy put+get pairs, one client', 'Python multiprocessing.Manager().Queue() put()/get()', 'pairs/s', N.pyPairs, py.queue.map((t) => (N.pyPairs * 1000) / t)))
    rows.push(row('Manager Lock proxy acquire+release pairs, one client', 'Python multiprocessing.Manager().Lock() acquire()/release()', 'pairs/s', N.pyPairs, py.lock.map((t) => (N.pyPairs * 1000) / t)))
    rows.push(row(START, 'Python fork', 'ms', 1, py.fork_start))
    rows.push(row(START, 'Python spawn', 'ms', 1, py.spawn_start))
  } else log('manager: python3 not available or failed; no Python rows')
  return rows
}
