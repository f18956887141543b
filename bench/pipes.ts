// Pipe benchmarks: ping-pong round trips between the main thread and a worker, blocking and coro,
// and 1 MiB sendBytes throughput, beside a raw MessagePort and Python's multiprocessing.Pipe.
import { MessageChannel, Worker } from 'node:worker_threads'
import { spawnSync } from 'node:child_process'
import { AioPipe, AioProcess, coro_wait, wait, type AioConnection } from '../generated/index.generated.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'

const ROUNDS = 10_000
/** Round trips through wait(): fewer, as a slow path may take ms each. */
const WAIT_ROUNDS = 2_000
/** Connections wait() watches; the answer comes on the last. */
const WAIT_CONNECTIONS = 4
const MIB = 1024 * 1024
const BIG = 256 // 1 MiB messages per throughput run

async function pipePingPong(style: 'blocking' | 'coro'): Promise<number> {
  const [here, there] = AioPipe()
  const p = new AioProcess({
    target: (conn: AioConnection, n: number) => {
      for (let i = 0; i < n; i++) conn.sendBytes(conn.recvBytes())
    },
    args: [there, ROUNDS + 500],
  })
  p.start()
  const msg = Buffer.from('ping')
  for (let i = 0; i < 500; i++) {
    here.sendBytes(msg)
    here.recvBytes()
  }
  const t0 = performance.now()
  for (let i = 0; i < ROUNDS; i++) {
    if (style === 'blocking') {
      here.sendBytes(msg)
      here.recvBytes()
    } else {
      await here.coro_sendBytes(msg)
      await here.coro_recvBytes()
    }
  }
  const rate = ROUNDS / ((performance.now() - t0) / 1000)
  p.join(30_000)
  if (p.exitcode !== 0) throw new Error(`ping-pong worker ended with ${p.exitcode}`)
  return rate
}

/**
 * A ping-pong whose answers come on the last of WAIT_CONNECTIONS pipes, found with wait() (or
 * coro_wait()) on all of them, as a loop serving several peers does: Python's
 * multiprocessing.connection.wait selects on their fds.
 */
async function waitPingPong(style: 'blocking' | 'coro'): Promise<number> {
  const [request, requested] = AioPipe()
  const pipes = Array.from({ length: WAIT_CONNECTIONS }, () => AioPipe(false))
  const readers = pipes.map(([r]) => r)
  const p = new AioProcess({
    target: (req: AioConnection, answer: AioConnection, n: number) => {
      for (let i = 0; i < n; i++) answer.sendBytes(req.recvBytes())
    },
    args: [requested, pipes[WAIT_CONNECTIONS - 1][1], WAIT_ROUNDS + 100],
  })
  p.start()
  const msg = Buffer.from('ping')
  const round = async (): Promise<void> => {
    request.sendBytes(msg)
    const ready = style === 'blocking' ? wait(readers, 30_000) : await coro_wait(readers, 30_000)
    if (ready.length !== 1) throw new Error('wait() found no answer')
    ready[0].recvBytes()
  }
  for (let i = 0; i < 100; i++) await round()
  const t0 = performance.now()
  for (let i = 0; i < WAIT_ROUNDS; i++) await round()
  const rate = WAIT_ROUNDS / ((performance.now() - t0) / 1000)
  p.join(30_000)
  if (p.exitcode !== 0) throw new Error(`wait ping-pong worker ended with ${p.exitcode}`)
  return rate
}

async function pipeThroughput(): Promise<number> {
  const [reader, writer] = AioPipe(false)
  const p = new AioProcess({
    target: (w: AioConnection, n: number, size: number) => {
      const b = Buffer.alloc(size, 1)
      for (let i = 0; i < n; i++) w.sendBytes(b)
    },
    args: [writer, BIG + 8, MIB],
  })
  p.start()
  for (let i = 0; i < 8; i++) reader.recvBytes()
  const t0 = performance.now()
  let bytes = 0
  for (let i = 0; i < BIG; i++) bytes += reader.recvBytes().length
  const rate = bytes / 1e6 / ((performance.now() - t0) / 1000)
  p.join(30_000)
  return rate
}

function portWorker(code: string): Promise<{ worker: Worker; port: import('node:worker_threads').MessagePort }> {
  const { port1, port2 } = new MessageChannel()
  const worker = new Worker(code, { eval: true, workerData: { port: port2 }, transferList: [port2] })
  return Promise.resolve({ worker, port: port1 })
}

async function messagePortPingPong(): Promise<number> {
  const { worker, port } = await portWorker(`
    const { workerData } = require('node:worker_threads')
    workerData.port.on('message', (m) => workerData.port.postMessage(m))`)
  const p = port
  const once = () => new Promise((r) => p.once('message', r))
  for (let i = 0; i < 500; i++) {
    p.postMessage('ping')
    await once()
  }
  const t0 = performance.now()
  for (let i = 0; i < ROUNDS; i++) {
    p.postMessage('ping')
    await once()
  }
  const rate = ROUNDS / ((performance.now() - t0) / 1000)
  p.close()
  await worker.terminate()
  return rate
}

async function messagePortThroughput(transfer: boolean): Promise<number> {
  const { worker, port } = await portWorker(`
    const { workerData } = require('node:worker_threads')
    workerData.port.on('message', (n) => {
      for (let i = 0; i < n; i++) { const b = new Uint8Array(${MIB}).fill(1); workerData.port.postMessage(b, ${transfer} ? [b.buffer] : []) }
    })`)
  const p = port
  let got = 0
  let bytes = 0
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    p.on('message', (b: Uint8Array) => {
      bytes += b.length
      if (++got === BIG) resolve()
    })
    p.postMessage(BIG)
  })
  const rate = bytes / 1e6 / ((performance.now() - t0) / 1000)
  p.close()
  await worker.terminate()
  return rate
}

const PY = String.raw`
import json, time, sys
from multiprocessing import Pipe, Process
from multiprocessing.connection import wait
R, BIG, WR, WC = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def echo(c, n):
    for _ in range(n): c.send_bytes(c.recv_bytes())
def answer_on(req, ans, n):
    for _ in range(n): ans.send_bytes(req.recv_bytes())
def blast(c, n):
    b = b'\1' * (1 << 20)
    for _ in range(n): c.send_bytes(b)
if __name__ == '__main__':
    out = {'pingpong': [], 'mbps': [], 'waitpp': []}
    for _ in range(5):
        a, b = Pipe(); p = Process(target=echo, args=(b, R + 500)); p.start()
        for _ in range(500): a.send_bytes(b'ping'); a.recv_bytes()
        t = time.perf_counter()
        for _ in range(R): a.send_bytes(b'ping'); a.recv_bytes()
        out['pingpong'].append(R / (time.perf_counter() - t)); p.join()
        r, w = Pipe(False); p = Process(target=blast, args=(w, BIG)); p.start()
        t = time.perf_counter(); n = 0
        for _ in range(BIG): n += len(r.recv_bytes())
        out['mbps'].append(n / 1e6 / (time.perf_counter() - t)); p.join()
        a, b = Pipe(); pipes = [Pipe(False) for _ in range(WC)]; readers = [r for r, _ in pipes]
        p = Process(target=answer_on, args=(b, pipes[-1][1], WR + 100)); p.start()
        def rnd():
            a.send_bytes(b'ping'); ready = wait(readers, 30); ready[0].recv_bytes()
        for _ in range(100): rnd()
        t = time.perf_counter()
        for _ in range(WR): rnd()
        out['waitpp'].append(WR / (time.perf_counter() - t)); p.join()
    print(json.dumps(out))
`

export async function benchPipes({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  if (only && !only.test('pipe')) return []
  const rows: Row[] = []
  const PP = 'Pipe ping-pong main ⇄ worker (4-byte sendBytes/recvBytes)'
  const TP = 'Pipe 1 MiB sendBytes, worker → main'
  log('pipes: ping-pong')
  const [blocking, coro, port] = await interleaved([() => pipePingPong('blocking'), () => pipePingPong('coro'), messagePortPingPong], 5)
  rows.push(row(PP, 'aioprocessing-ts blocking', 'round trips/s', ROUNDS, blocking))
  rows.push(row(PP, 'aioprocessing-ts coro_', 'round trips/s', ROUNDS, coro))
  rows.push(row(PP, 'raw MessagePort postMessage', 'round trips/s', ROUNDS, port))
  const WP = `Pipe ping-pong through wait() on ${WAIT_CONNECTIONS} connections, answered on the last`
  log('pipes: ping-pong through wait()')
  const [waitBlocking, waitCoro] = await interleaved([() => waitPingPong('blocking'), () => waitPingPong('coro')], 5)
  rows.push(row(WP, 'aioprocessing-ts wait()', 'round trips/s', WAIT_ROUNDS, waitBlocking))
  rows.push(row(WP, 'aioprocessing-ts coro_wait()', 'round trips/s', WAIT_ROUNDS, waitCoro))
  log('pipes: throughput')
  const [tp, copy, moved] = await interleaved([pipeThroughput, () => messagePortThroughput(false), () => messagePortThroughput(true)], 5)
  rows.push(row(TP, 'aioprocessing-ts recvBytes', 'MB/s', BIG, tp))
  rows.push(row(TP, 'raw MessagePort (copy)', 'MB/s', BIG, copy))
  rows.push(row(TP, 'raw MessagePort (transfer)', 'MB/s', BIG, moved))
  const py = spawnSync('python3', ['-c', PY, String(ROUNDS), String(BIG), String(WAIT_ROUNDS), String(WAIT_CONNECTIONS)], { encoding: 'utf8', timeout: 120_000 })
  if (py.status === 0) {
    const r = JSON.parse(py.stdout) as { pingpong: number[]; mbps: number[]; waitpp: number[] }
    rows.push(row(PP, 'Python multiprocessing.Pipe, 2 processes', 'round trips/s', ROUNDS, r.pingpong))
    rows.push(row(WP, 'Python multiprocessing.connection.wait, 2 processes', 'round trips/s', WAIT_ROUNDS, r.waitpp))
    rows.push(row(TP, 'Python multiprocessing.Pipe, 2 processes', 'MB/s', BIG, r.mbps))
  } else log(`pipes: python3 peer skipped: ${py.stderr || py.error}`)
  return rows
}
