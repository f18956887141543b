// Python peers for bench/primitives.ts: one python3 process runs every Python benchmark and prints
// JSON. The "aioprocessing-style" classes copy what aioprocessing does (aioprocessing/executor.py,
// aioprocessing/locks.py): every coro_* is loop.run_in_executor on a one-thread ThreadPoolExecutor
// calling the blocking multiprocessing method. aioprocessing itself is not installable here.

import { execFile } from 'node:child_process'

export const PYTHON_SCRIPT = String.raw`
import asyncio, json, sys, time
import multiprocessing as mp
from concurrent.futures import ThreadPoolExecutor

cfg = json.loads(sys.argv[1])
RUNS = cfg['runs']
TIMEOUT = cfg['timeoutMs'] / 1000
WARM = cfg['warmTrips']
ctx = mp.get_context('fork')  # -c scripts cannot be re-imported by 'spawn'
now = time.perf_counter_ns


class _ExecutorMixin:
    # aioprocessing's run_in_executor: the blocking call goes to the object's own executor
    pool_workers = 1

    def __init__(self, obj):
        self._obj = obj
        self._executor = ThreadPoolExecutor(max_workers=self.pool_workers)

    def run_in_executor(self, callback, *args):
        loop = asyncio.get_event_loop()
        return loop.run_in_executor(self._executor, callback, *args)


class AioLockStyle(_ExecutorMixin):
    # AioBaseLock: pool_workers = 1, coro_acquire/coro_release with their done callbacks
    def __init__(self, obj):
        super().__init__(obj)
        self._threaded_acquire = False

    def coro_acquire(self, *args):
        def lock_acquired(fut):
            if fut.result():
                self._threaded_acquire = True
        out = self.run_in_executor(self._obj.acquire, *args)
        out.add_done_callback(lock_acquired)
        return out

    def coro_release(self):
        def lock_released(fut):
            self._threaded_acquire = False
        if not self._threaded_acquire:
            raise RuntimeError('A lock acquired via acquire() must be released via release().')
        out = self.run_in_executor(self._obj.release)
        out.add_done_callback(lock_released)
        return out


class AioEventStyle(_ExecutorMixin):
    # AioBaseWaiter: pool_workers = 1, coroutines = ['wait']; set/clear go straight to the delegate
    def coro_wait(self, *args):
        return self.run_in_executor(self._obj.wait, *args)

    def set(self):
        self._obj.set()

    def clear(self):
        self._obj.clear()


def lock_pairs(n):
    lock = ctx.Lock()
    out = []
    for r in range(RUNS + 1):  # run 0 is the warm-up
        t0 = now()
        for _ in range(n):
            if not lock.acquire():
                raise RuntimeError('acquire failed')
            lock.release()
        if r:
            out.append(now() - t0)
    return out


async def aio_lock_pairs(n):
    lock = AioLockStyle(ctx.Lock())
    out = []
    for r in range(RUNS + 1):
        t0 = now()
        for _ in range(n):
            if not await lock.coro_acquire():
                raise RuntimeError('coro_acquire failed')
            await lock.coro_release()
        if r:
            out.append(now() - t0)
    lock._executor.shutdown(wait=True)
    return out


def pong(a, b, total):
    for i in range(total):
        if not a.wait(TIMEOUT):
            raise SystemExit('ping %d timed out' % i)
        a.clear()
        b.set()


def ping_run(n, aio):
    # Like the Node side: a fresh process per run, WARM untimed round trips, then n timed ones.
    a, b = ctx.Event(), ctx.Event()
    p = ctx.Process(target=pong, args=(a, b, WARM + n), daemon=True)
    p.start()
    try:
        if not aio:
            def trips(count):
                for i in range(count):
                    a.set()
                    if not b.wait(TIMEOUT):
                        raise RuntimeError('pong %d timed out' % i)
                    b.clear()
            trips(WARM)
            t0 = now()
            trips(n)
            return now() - t0
        aio_b = AioEventStyle(b)
        async def aio_trips(count):
            for i in range(count):
                a.set()
                if not await aio_b.coro_wait(TIMEOUT):
                    raise RuntimeError('pong %d timed out' % i)
                aio_b.clear()
        async def timed():
            await aio_trips(WARM)
            t0 = now()
            await aio_trips(n)
            return now() - t0
        try:
            return asyncio.run(timed())
        finally:
            aio_b._executor.shutdown(wait=True)
    finally:
        p.join(TIMEOUT)
        if p.is_alive():
            p.terminate()
            p.join()
        if p.exitcode != 0:
            raise RuntimeError('pong process ended with exitcode %s' % p.exitcode)


def pingpong_interleaved(n_blocking, n_aio):
    # Round-robin like the Node side; round 0 is a warm-up.
    blocking, aio = [], []
    for r in range(RUNS + 1):
        t = ping_run(n_blocking, False)
        if r:
            blocking.append(t)
        t = ping_run(n_aio, True)
        if r:
            aio.append(t)
    return blocking, aio


n = cfg['n']
ping_blocking, ping_aio = pingpong_interleaved(n['eventPingPong'], n['aioEventPingPong'])
result = {
    'version': sys.version.split()[0],
    'lockPairs': {'n': n['lockPairs'], 'ns': lock_pairs(n['lockPairs'])},
    'aioLockPairs': {'n': n['aioLockPairs'], 'ns': asyncio.run(aio_lock_pairs(n['aioLockPairs']))},
    'eventPingPong': {'n': n['eventPingPong'], 'ns': ping_blocking},
    'aioEventPingPong': {'n': n['aioEventPingPong'], 'ns': ping_aio},
}
print(json.dumps(result))
`
export interface PythonSamples {
  n: number
  /** Elapsed ns of each measured run (the warm-up run is already dropped). */
  ns: number[]
}

export interface PythonResults {
  version: string
  lockPairs: PythonSamples
  aioLockPairs: PythonSamples
  eventPingPong: PythonSamples
  aioEventPingPong: PythonSamples
}

export interface PythonConfig {
  runs: number
  timeoutMs: number
  warmTrips: number
  n: { lockPairs: number; aioLockPairs: number; eventPingPong: number; aioEventPingPong: number }
}

/** Runs the peers; resolves to { error } when python3 is missing or fails, so the Node rows still print. */
export function runPythonPeers(cfg: PythonConfig, killAfterMs: number): Promise<PythonResults | { error: string }> {
  return runPythonScript<PythonResults>(PYTHON_SCRIPT, cfg, killAfterMs)
}

/** Runs `script` with `cfg` as JSON in argv[1] and parses the JSON it prints; { error } when python3 is missing or fails. */
export function runPythonScript<T>(script: string, cfg: unknown, killAfterMs: number): Promise<T | { error: string }> {
  return new Promise((resolve) => {
    execFile('python3', ['-c', script, JSON.stringify(cfg)], { timeout: killAfterMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code
        resolve({ error: code === 'ENOENT' ? 'python3 is not on PATH' : `python3 failed: ${error.message.split('\n')[0]} ${stderr.trim().split('\n').slice(-1)[0] ?? ''}` })
        return
      }
      try {
        resolve(JSON.parse(stdout) as T)
      } catch {
        resolve({ error: `python3 printed no JSON: ${stdout.slice(0, 200)}` })
      }
    })
  })
}
