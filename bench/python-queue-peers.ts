// Python peers for bench/queues.ts: one python3 process runs every queue benchmark and prints JSON.
// A producer process puts N items then a None sentinel into a multiprocessing.Queue; the main
// process gets them, timed from the first get to the sentinel. The "aioprocessing-style" consumer
// copies what aioprocessing does (aioprocessing/queues.py, aioprocessing/executor.py): coro_get is
// loop.run_in_executor(ThreadPoolExecutor(max_workers=cpu_count()), queue.get, ...).

import { runPythonScript } from './python-peers.js'

export const PYTHON_QUEUE_SCRIPT = String.raw`
import asyncio, json, sys, time
import multiprocessing as mp
from concurrent.futures import ThreadPoolExecutor

cfg = json.loads(sys.argv[1])
RUNS = cfg['runs']
TIMEOUT = cfg['timeoutMs'] / 1000
MIB = 1 << 20
ctx = mp.get_context('fork')  # -c scripts cannot be re-imported by 'spawn'
now = time.perf_counter_ns


class AioQueueStyle:
    # aioprocessing's AioQueue: pool_workers defaults to cpu_count(); coro_get = run_in_executor(get)
    def __init__(self, obj):
        self._obj = obj
        self._executor = ThreadPoolExecutor(max_workers=mp.cpu_count())

    def coro_get(self, *args):
        loop = asyncio.get_event_loop()
        return loop.run_in_executor(self._executor, self._obj.get, *args)


def produce(q, kind, n):
    if kind == 'int':
        for i in range(n):
            q.put(i)
    elif kind == 'dict':
        for i in range(n):
            q.put({'id': i, 'name': 'item-%d' % i, 'price': i + 0.5, 'ok': i % 2 == 0, 'tags': ['red', 'sale']})
    else:
        # put() only queues a reference (the feeder thread pickles it), so one bytes object serves
        item = bytes(MIB)
        for i in range(n):
            q.put(item)
    q.put(None)


def check(kind, v, i):
    ok = v == i if kind == 'int' else v['id'] == i if kind == 'dict' else len(v) == MIB
    if not ok:
        raise RuntimeError('item %d is wrong' % i)


def consume_blocking(q, kind, n):
    check(kind, q.get(True, TIMEOUT), 0)
    t0 = now()
    for i in range(1, n):
        check(kind, q.get(True, TIMEOUT), i)
    if q.get(True, TIMEOUT) is not None:
        raise RuntimeError('no sentinel after the last item')
    return now() - t0


def consume_aio(q, kind, n):
    aq = AioQueueStyle(q)

    async def run():
        check(kind, await aq.coro_get(True, TIMEOUT), 0)
        t0 = now()
        for i in range(1, n):
            check(kind, await aq.coro_get(True, TIMEOUT), i)
        if await aq.coro_get(True, TIMEOUT) is not None:
            raise RuntimeError('no sentinel after the last item')
        return now() - t0

    try:
        return asyncio.run(run())
    finally:
        aq._executor.shutdown(wait=True)


def one_run(kind, n, aio):
    # Like the Node side: a fresh producer per run, timed from the first get to the sentinel.
    q = ctx.Queue()
    p = ctx.Process(target=produce, args=(q, kind, n), daemon=True)
    p.start()
    try:
        return consume_aio(q, kind, n) if aio else consume_blocking(q, kind, n)
    finally:
        p.join(TIMEOUT)
        if p.is_alive():
            p.terminate()
            p.join()
        if p.exitcode != 0:
            raise RuntimeError('producer ended with exitcode %s' % p.exitcode)


n = cfg['n']
impls = [
    ('int', 'int', n['small'], False),
    ('dict', 'dict', n['small'], False),
    ('aioInt', 'int', n['aioSmall'], True),
    ('aioDict', 'dict', n['aioSmall'], True),
    ('mib', 'mib', n['mib'], False),
]
result = {'version': sys.version.split()[0]}
for name, kind, count, aio in impls:
    result[name] = {'n': count, 'ns': []}
for r in range(RUNS + 1):  # round-robin like the Node side; round 0 is a warm-up
    for name, kind, count, aio in impls:
        t = one_run(kind, count, aio)
        if r:
            result[name]['ns'].append(t)
print(json.dumps(result))
`

export interface PythonQueueSamples {
  /** Items put per run (plus the sentinel); the first get starts the clock. */
  n: number
  /** Elapsed ns of each measured run (the warm-up run is already dropped). */
  ns: number[]
}

export interface PythonQueueResults {
  version: string
  int: PythonQueueSamples
  dict: PythonQueueSamples
  aioInt: PythonQueueSamples
  aioDict: PythonQueueSamples
  mib: PythonQueueSamples
}

export interface PythonQueueConfig {
  runs: number
  timeoutMs: number
  n: { small: number; aioSmall: number; mib: number }
}

/** Runs the queue peers; resolves to { error } when python3 is missing or fails, so the Node rows still print. */
export function runPythonQueuePeers(cfg: PythonQueueConfig, killAfterMs: number): Promise<PythonQueueResults | { error: string }> {
  return runPythonScript<PythonQueueResults>(PYTHON_QUEUE_SCRIPT, cfg, killAfterMs)
}
