// Pipe benchmarks: ping-pong round trips between the main thread and a worker, blocking and coro,
// and 1 MiB sendBytes throughput, beside a raw MessagePort and Python's multiprocessing.Pipe.
import { MessageChannel, Worker } from 'node:worker_threads'
import { spawnSync } from 'node:child_process'
import { AioPipe, AioProcess, type AioConnection } from '../generated/index.generated.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'

const ROUNDS = 10_000
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
R, BIG = int(sys.argv[1]), int(sys.argv[2])
def echo(c, n):
    for _ in range(n): c.send_bytes(c.recv_bytes())
def blast(c, n):
    b = b'\1' * (1 << 20)
    for _ in range(n): c.send_bytes(b)
if __name__ == '__main__':
    out = {'pingpong': [], 'mbps': []}
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
  log('pipes: throughput')
  const [tp, copy, moved] = await interleaved([pipeThroughput, () => messagePortThroughput(false), () => messagePortThroughput(true)], 5)
  rows.push(row(TP, 'aioprocessing-ts recvBytes', 'MB/s', BIG, tp))
  rows.push(row(TP, 'raw MessagePort (copy)', 'MB/s', BIG, copy))
  rows.push(row(TP, 'raw MessagePort (transfer)', 'MB/s', BIG, moved))
  const py = spawnSync('python3', ['-c', PY, String(ROUNDS), String(BIG)], { encoding: 'utf8', timeout: 120_000 })
  if (py.status === 0) {
    const r = JSON.parse(py.stdout) as { pingpong: number[]; mbps: number[] }
    rows.push(row(PP, 'Python multiprocessing.Pipe, 2 processes', 'round trips/s', ROUNDS, r.pingpong))
    rows.push(row(TP, 'Python multiprocessing.Pipe, 2 processes', 'MB/s', BIG, r.mbps))
  } else log(`pipes: python3 peer skipped: ${py.stderr || py.error}`)
  return rows
}
