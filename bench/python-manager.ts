// Node and Python managers across the languages: queue put+get round trips of one client against a
// Python SyncManager (Python's own client beside the Node client, blocking and awaited) and against
// a Node AioManager (a Python client), in one run. Medians of RUNS runs after one warm-up run.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { AioManager } from '../generated/index.generated.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'
import { runPythonScript } from './python-peers.js'
import { proxyPairs } from './pairs.js'

const RUNS = 5
const PAIRS = 3_000
const TIMEOUT_MS = 120_000
const QUEUE = 'Manager Queue put+get pairs across languages, one client'
const LOCK = 'Manager Lock acquire+release pairs across languages, one client'

/** A Python SyncManager on a free port; prints the port, serves until killed. */
const SERVER = `
from multiprocessing.managers import SyncManager
m = SyncManager(('127.0.0.1', 0), authkey=b'bench')
s = m.get_server()
print(s.address[1], flush=True)
s.serve_forever()
`

/** Python's own client: ms per run of PAIRS queue pairs and of PAIRS lock pairs, against the manager at argv's address. */
const CLIENT = String.raw`
import json, sys, time
from multiprocessing.managers import SyncManager
cfg = json.loads(sys.argv[1])
address = cfg['address'] if isinstance(cfg['address'], str) else tuple(cfg['address'])
m = SyncManager(address, authkey=b'bench')
m.connect()
q, lock = m.Queue(), m.Lock()
out = {'queue': [], 'lock': []}
for r in range(cfg['runs'] + 1):
    t = time.perf_counter()
    for i in range(cfg['pairs']):
        q.put(i)
        assert q.get() == i
    qt = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(cfg['pairs']):
        lock.acquire()
        lock.release()
    lt = time.perf_counter() - t
    if r:
        out['queue'].append(qt * 1000)
        out['lock'].append(lt * 1000)
print(json.dumps(out))
`

function pythonServer(): Promise<{ port: number; child: ChildProcessWithoutNullStreams }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-u', '-c', SERVER])
    const timer = setTimeout(() => reject(new Error('the Python manager did not start in 30 s')), 30_000)
    child.on('error', reject)
    child.stdout.once('data', (d) => {
      clearTimeout(timer)
      resolve({ port: Number(String(d).trim()), child })
    })
  })
}

const rate = (ms: number[]) => ms.map((t) => (PAIRS * 1000) / t)
const failed = (benchmark: string, implementation: string, error: unknown): Row => ({ ...row(benchmark, implementation, 'failed', 0, [NaN]), notes: [`failed in this run: ${String((error as Error)?.message ?? error).split('\n')[0]}`] })

export async function benchPythonManager({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  if (only && !only.test('python-manager')) return []
  const rows: Row[] = []
  log('python-manager: a Python SyncManager, its own client and the Node client')
  let server: Awaited<ReturnType<typeof pythonServer>> | undefined
  try {
    server = await pythonServer()
    const address: [string, number] = ['127.0.0.1', server.port]
    const py = await runPythonScript<{ queue: number[]; lock: number[] }>(CLIENT, { address, runs: RUNS, pairs: PAIRS }, TIMEOUT_MS)
    if ('error' in py) {
      rows.push(failed(QUEUE, 'Python client → Python SyncManager', py.error), failed(LOCK, 'Python client → Python SyncManager', py.error))
    } else {
      rows.push(row(QUEUE, 'Python client → Python SyncManager: put()/get()', 'pairs/s', PAIRS, rate(py.queue)))
      rows.push(row(LOCK, 'Python client → Python SyncManager: acquire()/release()', 'pairs/s', PAIRS, rate(py.lock)))
    }
    const m = new AioManager({ address, authkey: 'bench', serializer: 'pickle' })
    m.connect()
    const q = m.Queue<number>()
    const lock = m.Lock()
    const [qb, qc, lb, lc] = await interleaved(proxyPairs(q, lock, PAIRS), RUNS)
    rows.push(row(QUEUE, 'Node client (aioprocessing-ts) → Python SyncManager: put()/get()', 'pairs/s', PAIRS, rate(qb)))
    rows.push(row(QUEUE, 'Node client (aioprocessing-ts) → Python SyncManager: await coro_put()/coro_get()', 'pairs/s', PAIRS, rate(qc)))
    rows.push(row(LOCK, 'Node client (aioprocessing-ts) → Python SyncManager: acquire()/release()', 'pairs/s', PAIRS, rate(lb)))
    rows.push(row(LOCK, 'Node client (aioprocessing-ts) → Python SyncManager: await coro_acquire()/coro_release()', 'pairs/s', PAIRS, rate(lc)))
    m.shutdown()
  } catch (error) {
    rows.push(failed(QUEUE, 'Node client → Python SyncManager', error))
  } finally {
    server?.child.kill('SIGKILL')
  }

  log('python-manager: a Node AioManager and a Python client')
  const node = new AioManager({ address: ['127.0.0.1', 0], authkey: 'bench' })
  const served = node.coro_serveForever()
  try {
    // serveForever() reports its port once it listens.
    const deadline = Date.now() + 30_000
    while (!(node.address as [string, number] | undefined)?.[1] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    const py = await runPythonScript<{ queue: number[]; lock: number[] }>(CLIENT, { address: node.address, runs: RUNS, pairs: PAIRS }, TIMEOUT_MS)
    if ('error' in py) rows.push(failed(QUEUE, 'Python client → Node AioManager', py.error))
    else {
      rows.push(row(QUEUE, 'Python client → Node AioManager (aioprocessing-ts): put()/get()', 'pairs/s', PAIRS, rate(py.queue)))
      rows.push(row(LOCK, 'Python client → Node AioManager (aioprocessing-ts): acquire()/release()', 'pairs/s', PAIRS, rate(py.lock)))
    }
  } finally {
    node.shutdown()
    await served
  }
  return rows
}
