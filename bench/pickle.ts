// Pickle codec benchmarks (runtime/ipc/pickle.ts): dumps and loads of a small dict (ops/s) and of
// 1 MiB of bytes (MB/s), beside CPython's own pickle.dumps/loads at protocol 4 in the same run.
// Both sides decode the same bytes: CPython's pickle of the dict, with its FRAME and MEMOIZEs.

import { isDeepStrictEqual } from 'node:util'
import { dumps, loads } from '../runtime/ipc/pickle.js'
import { interleaved, row, type BenchOptions, type Row } from './primitives.js'
import { runPythonScript } from './python-peers.js'

const RUNS = 7
const TIMEOUT_MS = 120_000
const MIB = 1024 * 1024
const N = { dict: 200_000, mib: 500 }

const DICT = { id: 123, name: 'item-123', tags: ['a', 'b'], score: 1.5 }
/** CPython 3.11–3.13's `pickle.dumps(DICT, 4)`; the Python peer checks it still is. */
const PY_DICT_PICKLE = Buffer.from('80049542000000000000007d94288c026964944b7b8c046e616d65948c086974656d2d313233948c0474616773945d94288c0161948c016294658c0573636f726594473ff8000000000000752e', 'hex')
const BLOB = Buffer.alloc(MIB, 0x5a)

const PYTHON = String.raw`
import json, pickle, sys, time
cfg = json.loads(sys.argv[1])
RUNS, ND, NM = cfg['runs'], cfg['dict'], cfg['mib']
now = time.perf_counter_ns
d = {'id': 123, 'name': 'item-123', 'tags': ['a', 'b'], 'score': 1.5}
blob = b'\x5a' * (1 << 20)
dp, bp = pickle.dumps(d, 4), pickle.dumps(blob, 4)
dumps, loads = pickle.dumps, pickle.loads

def runs(one):
    out = []
    for r in range(RUNS + 1):  # run 0 is the warm-up
        ns = one()
        if r:
            out.append(ns)
    return out

# One loop per operation, as on the Node side: a loop over fn(*args) would time the call too.
def dict_dumps():
    t0 = now()
    for _ in range(ND): dumps(d, 4)
    return now() - t0

def dict_loads():
    t0 = now()
    for _ in range(ND): loads(dp)
    return now() - t0

def mib_dumps():
    t0 = now()
    for _ in range(NM): dumps(blob, 4)
    return now() - t0

def mib_loads():
    t0 = now()
    for _ in range(NM): loads(bp)
    return now() - t0

print(json.dumps({
    'version': sys.version.split()[0],
    'dictPickle': dp.hex(),
    'dictDumps': runs(dict_dumps), 'dictLoads': runs(dict_loads),
    'mibDumps': runs(mib_dumps), 'mibLoads': runs(mib_loads),
}))
`

interface PythonPickle {
  version: string
  dictPickle: string
  dictDumps: number[]
  dictLoads: number[]
  mibDumps: number[]
  mibLoads: number[]
}

// One loop per operation, each checking what it made so that the work cannot be elided.
function timed(n: number, op: () => number, expect: number): number {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) if (op() !== expect) throw new Error('pickle bench: wrong result')
  return performance.now() - t0
}

const opsPerSecond = (n: number) => (ms: number) => (n * 1e3) / ms
const mbPerSecond = (n: number) => (ms: number) => (n * MIB) / 1e6 / (ms / 1e3)

export async function benchPickle({ log = () => {}, only }: BenchOptions = {}): Promise<Row[]> {
  if (only && !only.test('pickle')) return []
  const DICT_ENC = 'pickle: encode a small dict (4 keys, a 2-item list), protocol 4'
  const DICT_DEC = "pickle: decode a small dict (CPython's protocol-4 bytes, 77 B)"
  const MIB_ENC = 'pickle: encode 1 MiB of bytes, protocol 4'
  const MIB_DEC = 'pickle: decode 1 MiB of bytes, protocol 4'
  if (!isDeepStrictEqual(loads(PY_DICT_PICKLE), DICT)) throw new Error("pickle bench: loads does not give the dict back from CPython's bytes")
  const blobPickle = dumps(BLOB)
  const dictLength = dumps(DICT).length

  log('pickle: dumps/loads, small dict and 1 MiB')
  const [dictEnc, dictDec, mibEnc, mibDec] = await interleaved([
    async () => timed(N.dict, () => dumps(DICT).length, dictLength),
    async () => timed(N.dict, () => (loads(PY_DICT_PICKLE) as typeof DICT).id, DICT.id),
    async () => timed(N.mib, () => dumps(BLOB).length, blobPickle.length),
    async () => timed(N.mib, () => (loads(blobPickle) as Buffer).length, MIB),
  ], RUNS)
  const TS = 'aioprocessing-ts'
  const rows: Row[] = [
    row(DICT_ENC, `${TS} dumps`, 'ops/s', N.dict, dictEnc.map(opsPerSecond(N.dict))),
    row(DICT_DEC, `${TS} loads`, 'ops/s', N.dict, dictDec.map(opsPerSecond(N.dict))),
    row(MIB_ENC, `${TS} dumps`, 'MB/s', N.mib, mibEnc.map(mbPerSecond(N.mib))),
    row(MIB_DEC, `${TS} loads`, 'MB/s', N.mib, mibDec.map(mbPerSecond(N.mib))),
  ]

  // Python runs alone, after the Node figures, as the other peers do.
  log('pickle: CPython pickle.dumps/loads')
  const py = await runPythonScript<PythonPickle>(PYTHON, { runs: RUNS, dict: N.dict, mib: N.mib }, TIMEOUT_MS)
  if ('error' in py) {
    log(`pickle: Python peer failed: ${py.error}`)
    return [...rows, { ...row(DICT_ENC, 'CPython pickle.dumps', 'failed', 0, [NaN]), notes: [`failed in this run: ${py.error}`] }]
  }
  const name = `CPython ${py.version} pickle`
  const ms = (ns: number[]): number[] => ns.map((v) => v / 1e6)
  const dec = row(DICT_DEC, `${name}.loads`, 'ops/s', N.dict, ms(py.dictLoads).map(opsPerSecond(N.dict)))
  return [
    ...rows,
    row(DICT_ENC, `${name}.dumps`, 'ops/s', N.dict, ms(py.dictDumps).map(opsPerSecond(N.dict))),
    py.dictPickle === PY_DICT_PICKLE.toString('hex') ? dec : { ...dec, notes: [`this CPython pickles the dict as ${py.dictPickle}, not as the bytes Node decoded`] },
    row(MIB_ENC, `${name}.dumps`, 'MB/s', N.mib, ms(py.mibDumps).map(mbPerSecond(N.mib))),
    row(MIB_DEC, `${name}.loads`, 'MB/s', N.mib, ms(py.mibLoads).map(mbPerSecond(N.mib))),
  ]
}
