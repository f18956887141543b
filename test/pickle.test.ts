// Python's pickle (runtime/ipc/pickle.ts) against CPython 3.11, 3.12 and 3.13: one table of values
// each way at protocols 2–5 (and Python's 0–1 into Node), hostile streams that must end in
// UnpicklingError, a seeded fuzz run over mutated pickles, and what dumps refuses.
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { PicklingError, UnpicklingError } from '../runtime/core/errors.js'
import { PyByteArray, PyFloat, PyFrozenSet, PyObject, PyTuple, dumps, loads, tuple } from '../runtime/ipc/pickle.js'
import { LONG, pythons, runNode } from './helpers.js'

const PROTOCOLS = [2, 3, 4, 5] as const
/** Python also writes 0 and 1, which loads reads (dumps does not write them). */
const PY_PROTOCOLS = [0, 1, ...PROTOCOLS] as const

interface Row {
  label: string
  /** The value as a Python expression. */
  py: string
  /** What loads gives for Python's pickle of it. */
  js: unknown
  /** What dumps is given for Python to get `py`, when not `js` (a whole float is a PyFloat). */
  out?: unknown
  /** What Python gets back after its pickle went through loads and dumps, when not `py`. */
  back?: string
  /** What deepEqual cannot see: which parts are the same object. */
  same?: (v: any) => boolean
}

const bytesOf = (n: number, step: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * step) % 256))
const selfList = (): unknown[] => {
  const a: unknown[] = []
  a.push(a)
  return a
}
const selfDict = (): Map<unknown, unknown> => {
  const d = new Map<unknown, unknown>()
  d.set(1, d)
  return d
}
const shared = [1]

const ROWS: Row[] = [
  { label: 'None', py: 'None', js: null },
  { label: 'True', py: 'True', js: true },
  { label: 'False', py: 'False', js: false },
  { label: '0', py: '0', js: 0 },
  { label: '255 (BININT1)', py: '255', js: 255 },
  { label: '256 (BININT2)', py: '256', js: 256 },
  { label: '65535', py: '65535', js: 65535 },
  { label: '65536 (BININT)', py: '65536', js: 65536 },
  { label: '-1', py: '-1', js: -1 },
  { label: '2**31-1', py: '2**31-1', js: 2 ** 31 - 1 },
  { label: '2**31 (LONG1)', py: '2**31', js: 2 ** 31 },
  { label: '-2**31', py: '-2**31', js: -(2 ** 31) },
  { label: '-2**31-1', py: '-2**31-1', js: -(2 ** 31) - 1 },
  { label: '2**53-1', py: '2**53-1', js: Number.MAX_SAFE_INTEGER },
  { label: '2**53 (bigint)', py: '2**53', js: 2n ** 53n },
  { label: '-2**53 (bigint)', py: '-2**53', js: -(2n ** 53n) },
  { label: '2**63-1', py: '2**63-1', js: 2n ** 63n - 1n },
  { label: '2**64', py: '2**64', js: 2n ** 64n },
  { label: '-2**100', py: '-2**100', js: -(2n ** 100n) },
  { label: '10**30', py: '10**30', js: 10n ** 30n },
  { label: '1.5', py: '1.5', js: 1.5 },
  { label: '0.1', py: '0.1', js: 0.1 },
  // A whole float is a number here, so it comes back an int unless sent as a PyFloat.
  { label: '1.0', py: '1.0', js: 1, out: new PyFloat(1), back: '1' },
  { label: '-0.0', py: '-0.0', js: -0 },
  { label: 'inf', py: "float('inf')", js: Infinity },
  { label: '-inf', py: "float('-inf')", js: -Infinity },
  { label: 'nan', py: "float('nan')", js: NaN },
  { label: '1e308', py: '1e308', js: 1e308 },
  { label: '5e-324', py: '5e-324', js: 5e-324 },
  { label: "''", py: "''", js: '' },
  { label: 'non-ASCII str', py: "'héllo wörld ✓'", js: 'héllo wörld ✓' },
  { label: 'emoji', py: "'😀'", js: '😀' },
  { label: "lone surrogate '\\ud800'", py: "'\\ud800'", js: '\ud800' },
  { label: 'lone low surrogate inside', py: "'a\\udfffb'", js: 'a\udfffb' },
  { label: 'str of 300 bytes', py: "'x' * 300", js: 'x'.repeat(300) },
  { label: 'str of 80,000 bytes', py: "'é' * 40000", js: 'é'.repeat(40000) },
  { label: "b''", py: "b''", js: Buffer.alloc(0) },
  { label: "b'abc'", py: "b'abc'", js: Buffer.from('abc') },
  { label: 'bytes of 300', py: 'bytes(i % 256 for i in range(300))', js: bytesOf(300, 1) },
  { label: 'bytes of 70,000', py: 'bytes(i * 7 % 256 for i in range(70000))', js: bytesOf(70000, 7) },
  { label: "bytearray(b'xyz')", py: "bytearray(b'xyz')", js: PyByteArray.from(Buffer.from('xyz')) },
  { label: 'bytearray()', py: 'bytearray()', js: new PyByteArray(0) },
  { label: '[]', py: '[]', js: [] },
  { label: 'list', py: "[1, 'a', None, True]", js: [1, 'a', null, true] },
  { label: 'nested list', py: '[[1, [2, [3]]]]', js: [[1, [2, [3]]]] },
  { label: 'list of 1,001 (two APPENDS batches)', py: 'list(range(1001))', js: Array.from({ length: 1001 }, (_, i) => i) },
  { label: '()', py: '()', js: tuple() },
  { label: '(1,)', py: '(1,)', js: tuple(1) },
  { label: "(1, 'a')", py: "(1, 'a')", js: tuple(1, 'a') },
  { label: '(1, 2, 3)', py: '(1, 2, 3)', js: tuple(1, 2, 3) },
  { label: '(1, 2, 3, 4, 5)', py: '(1, 2, 3, 4, 5)', js: tuple(1, 2, 3, 4, 5) },
  { label: '{}', py: '{}', js: {} },
  { label: 'dict of str keys', py: "{'a': 1, 'b': [2]}", js: { a: 1, b: [2] } },
  { label: 'dict of 1,001 str keys', py: '{str(i): i for i in range(1001)}', js: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [String(i), i])) },
  { label: 'dict of int keys', py: "{1: 'a', 2: 'b'}", js: new Map([[1, 'a'], [2, 'b']]) },
  { label: 'dict of a str key, then an int key', py: "{'a': 1, 2: 'b'}", js: new Map<unknown, unknown>([['a', 1], [2, 'b']]) },
  { label: 'dict of tuple keys', py: "{(1, 2): 'a'}", js: new Map([[tuple(1, 2), 'a']]) },
  { label: "dict with a '__proto__' key", py: "{'__proto__': {'x': 1}}", js: JSON.parse('{"__proto__": {"x": 1}}'), same: (v) => Object.getPrototypeOf(v) === Object.prototype && Object.hasOwn(v, '__proto__') && v.x === undefined },
  { label: 'set', py: '{1, 2, 3}', js: new Set([1, 2, 3]) },
  { label: 'set()', py: 'set()', js: new Set() },
  { label: 'frozenset', py: 'frozenset({1, 2})', js: new PyFrozenSet([1, 2]) },
  { label: 'frozenset()', py: 'frozenset()', js: new PyFrozenSet() },
  { label: 'a list shared twice', py: '(lambda s: [s, s])([1])', js: [shared, shared], same: (v) => v[0] === v[1] },
  { label: 'a list that holds itself', py: '(lambda a: (a.append(a), a)[1])([])', js: selfList(), same: (v) => v[0] === v },
  { label: 'a dict that holds itself under an int key', py: '(lambda d: (d.__setitem__(1, d), d)[1])({})', js: selfDict(), same: (v) => v.get(1) === v },
  { label: "KeyError('k')", py: "KeyError('k')", js: new PyObject('builtins', 'KeyError', ['k']) },
  { label: "ValueError('v', 1)", py: "ValueError('v', 1)", js: new PyObject('builtins', 'ValueError', ['v', 1]) },
  { label: "multiprocessing.TimeoutError('t')", py: "__import__('multiprocessing').TimeoutError('t')", js: new PyObject('multiprocessing.context', 'TimeoutError', ['t']) },
  { label: 'complex(1, 2)', py: 'complex(1, 2)', js: new PyObject('builtins', 'complex', [1, 2]) },
  { label: 'range(0, 10, 2)', py: 'range(0, 10, 2)', js: new PyObject('builtins', 'range', [0, 10, 2]) },
]

// One python3 for all of a version's rows. It reads the rows (JSON), prints `py <row> <protocol>
// <base64>` for each row at each protocol and `end`, then reads `node|back <row> <protocol> <base64>`
// lines until EOF and prints a JSON verdict for each, and `done`. Verdicts compare type and value
// (==) node by node, floats by sign and NaN too, and which containers are the same object.
const TABLE_SCRIPT = String.raw`
import base64, json, math, pickle, sys

rows = json.loads(sys.stdin.readline())
values = [eval(r['py']) for r in rows]
for i, v in enumerate(values):
    for p in json.loads(sys.argv[1]):
        print('py', i, p, base64.b64encode(pickle.dumps(v, p)).decode())
print('end', flush=True)

def same(a, b, pairs, back):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (a != a and b != b) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, dict, set, bytearray)):
        # Shared and self-holding containers: one object in a is one object in b.
        if id(a) in pairs or id(b) in back:
            return pairs.get(id(a)) == id(b) and back.get(id(b)) == id(a)
        pairs[id(a)], back[id(b)] = id(b), id(a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, pairs, back) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], pairs, back) for k in a)
    if isinstance(a, BaseException):
        return same(a.args, b.args, pairs, back)
    return a == b

for line in sys.stdin:
    kind, i, p, data = line.split()
    i = int(i)
    want = eval(rows[i]['back']) if kind == 'back' and rows[i].get('back') else values[i]
    try:
        got = pickle.loads(base64.b64decode(data))
        verdict = 'ok' if same(want, got, {}, {}) else 'got ' + repr(got)[:200]
    except Exception as e:
        verdict = 'raised %s: %s' % (type(e).__name__, str(e)[:200])
    print(json.dumps([kind, i, int(p), verdict]))
print('done', flush=True)
`

interface Python {
  lines: AsyncIterator<string>
  send(line: string): void
  end(): void
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>
}

/** Starts python3 on a script; the test ends it (killed after LONG ms at the latest) and awaits its exit. */
function python(t: ExecutionContext, env: NodeJS.ProcessEnv, script: string, args: string[] = []): Python {
  const child = spawn('python3', ['-c', script, ...args], { env, timeout: LONG })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  // It may die before it reads all its input: a write to a closed pipe is then its exit's business.
  child.stdin.on('error', () => {})
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('error', (e) => resolve({ code: null, signal: null, stderr: `${stderr}${e.message}` }))
    child.on('close', (code, signal) => resolve({ code, signal, stderr }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exit
  })
  return {
    lines: createInterface({ input: child.stdout })[Symbol.asyncIterator](),
    send: (line) => void child.stdin.write(`${line}\n`),
    end: () => void child.stdin.end(),
    exit,
  }
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')

for (const [version, env] of pythons()) {
  test(`CPython ${version} ⇄ Node: ${ROWS.length} values each way at protocols 2–5 (and 0–1 into Node), and back again`, async (t) => {
    if (env.SKIP) {
      // The system's python3 (3.11) must be there; pyenv's 3.12 and 3.13 may not be.
      t.not(version, '3.11', 'the system python3 is 3.11 and must be found')
      t.log(`python ${version} not found (pyenv versions --bare): skipped`)
      return
    }
    const py = python(t, env, TABLE_SCRIPT, [JSON.stringify(PY_PROTOCOLS)])
    py.send(JSON.stringify(ROWS.map(({ py, back }) => ({ py, back }))))
    let decoded = 0
    const verdicts: Array<[string, number, number, string]> = []
    for (let next = await py.lines.next(); !next.done; next = await py.lines.next()) {
      const line = next.value
      if (line === 'end') py.end()
      else if (line === 'done') break
      else if (line.startsWith('py ')) {
        const [, i, p, data] = line.split(' ')
        const row = ROWS[Number(i)]
        const proto = Number(p) as 2 | 3 | 4 | 5
        const where = `${row.label} from Python's protocol ${p}`
        let v: unknown
        try {
          v = loads(Buffer.from(data, 'base64'))
        } catch (e) {
          // Reported, and the other rows still checked (its verdicts are missing from the count below).
          t.fail(`${where}: ${e}`)
          continue
        }
        t.deepEqual(v, row.js, where)
        if (row.same) t.true(row.same(v), `${where}: shared parts`)
        decoded++
        if (proto < 2) continue
        py.send(`back ${i} ${p} ${b64(dumps(v, { protocol: proto }))}`)
        py.send(`node ${i} ${p} ${b64(dumps(row.out ?? row.js, { protocol: proto }))}`)
      } else verdicts.push(JSON.parse(line))
    }
    const { code, signal, stderr } = await py.exit
    t.is(code, 0, `python3 ended with ${code ?? signal}: ${stderr}`)
    t.is(decoded, ROWS.length * PY_PROTOCOLS.length)
    t.is(verdicts.length, ROWS.length * PROTOCOLS.length * 2)
    const wrong = verdicts.filter(([, , , verdict]) => verdict !== 'ok').map(([kind, i, p, verdict]) => `${kind === 'node' ? "Node's dumps" : "Python's pickle through loads and dumps"} of ${ROWS[i].label}, protocol ${p}: ${verdict}`)
    t.deepEqual(wrong, [])
  })
}

// ---------------------------------------------------------------------------------------------
// Hostile streams

const le32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}
const le64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(n)
  return b
}
/** A stream from opcodes (numbers), raw bytes and latin-1 text. */
const bytes = (...parts: Array<number | Uint8Array | string>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : p)))
const P4 = bytes(0x80, 4)

/** What loads does with a stream: 'decoded', 'UnpicklingError', or the other error it threw. */
function outcome(b: Uint8Array): string {
  try {
    loads(b)
    return 'decoded'
  } catch (e) {
    return e instanceof UnpicklingError ? 'UnpicklingError' : `${(e as Error)?.name}: ${(e as Error)?.message}`
  }
}

/** A list nested n deep the DUP way: each level is filled after its copy was memoized, so the copy's depth is stale. */
function nestedByDup(n: number): Buffer {
  const level = bytes(0x5d, 0x32, 0x68, 0, 0x61, 0x30, 0x71, 0, 0x30) // ] DUP BINGET0 APPEND POP BINPUT0 POP
  return bytes(P4, 0x5d, 0x94, 0x30, Buffer.concat(Array(n).fill(level)), 0x68, 0, 0x2e)
}

const HOSTILE: Array<[string, Buffer, RegExp?]> = [
  ['BINUNICODE8 claiming 2^62 bytes', bytes(P4, 0x8d, le64(2n ** 62n), 'ab.'), /claims/],
  ['BINUNICODE8 claiming 2^64-1 bytes', bytes(P4, 0x8d, le64(2n ** 64n - 1n), 'ab.'), /claims/],
  ['BINBYTES8 claiming 2^62 bytes', bytes(P4, 0x8e, le64(2n ** 62n), 'ab.'), /claims/],
  ['BYTEARRAY8 claiming 2^62 bytes', bytes(0x80, 5, 0x96, le64(2n ** 62n), 'ab.'), /claims/],
  ['BINUNICODE claiming 2^32-1 bytes', bytes(P4, 0x58, le32(0xffffffff), 'ab.'), /claims/],
  ['BINBYTES claiming 2^31-1 bytes', bytes(0x80, 3, 0x42, le32(0x7fffffff), 'ab.'), /claims/],
  ['SHORT_BINBYTES claiming 255 of 3', bytes(P4, 0x43, 255, 'ab.'), /claims/],
  ['LONG4 claiming 2^31-1 bytes', bytes(P4, 0x8b, le32(0x7fffffff), 'ab.'), /claims/],
  ['LONG4 of a negative length', bytes(P4, 0x8b, le32(-1), 'ab.'), /negative/],
  ['BINSTRING claiming 2^31-1 bytes', bytes(0x80, 2, 0x54, le32(0x7fffffff), 'ab.'), /claims/],
  ['FRAME claiming 2^62 bytes', bytes(P4, 0x95, le64(2n ** 62n), 'N.'), /claims/],
  ['FRAME claiming 2^64-1 bytes', bytes(P4, 0x95, le64(2n ** 64n - 1n), 'N.'), /claims/],
  ['100,000 nested EMPTY_LIST + APPEND', bytes(P4, Buffer.alloc(100_000, 0x5d), Buffer.alloc(99_999, 0x61), 0x2e), /nested more than 1000/],
  ["'(' * 1e6 + 'l' * 1e6", bytes(Buffer.alloc(1e6, 0x28), Buffer.alloc(1e6, 0x6c), 0x2e), /nested more than 1000/],
  ["'(' * 1e6 + 't' * 1e6 (tuples)", bytes(Buffer.alloc(1e6, 0x28), Buffer.alloc(1e6, 0x74), 0x2e), /nested more than 1000/],
  ["'(' * 1e6 and nothing more", bytes(Buffer.alloc(1e6, 0x28), 0x2e), /empty stack/],
  ['100,000 nested one-item dicts (SETITEM)', bytes(P4, '}N'.repeat(100_000), '}', Buffer.alloc(100_000, 0x73), 0x2e), /nested more than 1000/],
  ['5,000 levels nested through DUP and the memo', nestedByDup(5000), /nested more than 1000/],
  ['BINGET of a key never stored', bytes(P4, 0x68, 5, 0x2e), /never stored/],
  ['LONG_BINGET 0xffffffff never stored', bytes(P4, 0x6a, le32(0xffffffff), 0x2e), /never stored/],
  ['LONG_BINPUT 0xffffffff on an empty stack', bytes(P4, 0x72, le32(0xffffffff), 0x2e), /empty stack/],
  ['LONG_BINPUT 0xffffffff, then GET of another key', bytes(P4, 0x4e, 0x72, le32(0xffffffff), 0x68, 0, 0x2e), /never stored/],
  ['PUT and GET of keys that are not numbers', bytes('(]pabc\ngxyz\nt.'), /not an int/],
  ['GET of a negative key', bytes('N', 'p0\n', 'g-1\n.'), /not a memo index/],
  ['FLOAT of an empty line', bytes('F\n.'), /not a float/],
  ['FLOAT of hex', bytes('F0x10\n.'), /not a float/],
  ['GLOBAL os.system, called', bytes('cos\nsystem\n(S"echo hi"\ntR.'), /os\.system/],
  ['GLOBAL posix.system', bytes(0x80, 2, 'cposix\nsystem\n.'), /posix\.system/],
  ['GLOBAL __builtin__.eval at protocol 2', bytes(0x80, 2, 'c__builtin__\neval\n', 0x8c, 1, 'x', 0x85, 'R.'), /builtins\.eval/],
  ['STACK_GLOBAL builtins.eval, called', bytes(P4, 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, 0x8c, 1, '1', 0x85, 'R.'), /builtins\.eval/],
  ['STACK_GLOBAL subprocess.Popen', bytes(P4, 0x8c, 10, 'subprocess', 0x8c, 5, 'Popen', 0x93, 0x2e), /subprocess\.Popen/],
  ['INST os.system', bytes('(S"echo hi"\nios\nsystem\n.'), /os\.system/],
  ['STACK_GLOBAL of a key of Object.prototype', bytes(P4, 0x8c, 8, 'builtins', 0x8c, 11, 'constructor', 0x93, 0x2e), /builtins\.constructor/],
  ['REDUCE of something that is not a global', bytes(P4, 0x4e, 0x29, 0x52, 0x2e), /only allowed globals/],
  ['PERSID', bytes('P1\n.'), /persistent/],
  ['BINPERSID', bytes(P4, 0x4e, 0x51, 0x2e), /persistent/],
  ['EXT1', bytes(P4, 0x82, 1, 0x2e), /extension/],
  ['EXT2', bytes(P4, 0x83, 1, 0, 0x2e), /extension/],
  ['EXT4', bytes(P4, 0x84, le32(1), 0x2e), /extension/],
  ['NEXT_BUFFER', bytes(0x80, 5, 0x97, 0x2e), /out-of-band/],
  ['READONLY_BUFFER', bytes(0x80, 5, 0x43, 1, 'a', 0x98, 0x2e), /out-of-band/],
  ['INT of 10^6 digits', bytes('I', '1'.repeat(1e6), '\n.'), /digits/],
  ['LONG of 10^6 digits', bytes('L', '9'.repeat(1e6), 'L\n.'), /digits/],
  ['protocol 6', bytes(0x80, 6, 'N.'), /protocol: 6/],
  ['nothing at all', Buffer.alloc(0), /truncated/],
  ['STOP on an empty stack', bytes('.'), /empty stack/],
  ['text', bytes('hello world'), undefined],
  ['a NUL byte', bytes(0), /invalid load key/],
  ['0xff bytes', Buffer.alloc(10, 0xff), /invalid load key/],
  ['APPEND to None', bytes(P4, 'NNa.'), /APPEND on None/],
  ['SETITEM on a list', bytes(P4, ']NNs.'), /SETITEM on a list/],
  ['a str that is not UTF-8', bytes(P4, 0x8c, 2, 0xff, 0xfe, 0x2e), /UTF-8/],
]

test(`${HOSTILE.length} hostile streams each end in an UnpicklingError that says why, and nothing is allocated as claimed`, (t) => {
  const before = process.memoryUsage().rss
  for (const [what, stream, message] of HOSTILE) {
    const e = t.throws(() => loads(stream), { instanceOf: UnpicklingError }, what)
    if (message && e) t.regex(e.message, message, what)
  }
  t.true(process.memoryUsage().rss - before < 512 * 1024 * 1024, 'no claimed length was allocated')
})

test('a memo key as large as LONG_BINPUT allows costs one entry, not an array of that size', (t) => {
  t.deepEqual(loads(bytes(P4, 0x4e, 0x72, le32(0xffffffff), 0x6a, le32(0xffffffff), 0x86, 0x2e)), tuple(null, null))
})

test('FLOAT, PUT and GET of protocol 0 read what Python writes', (t) => {
  t.deepEqual(loads(bytes('(F1.5\nF-0.0\nFinf\nF-inf\nF1e+300\np0\ng0\nt.')), tuple(1.5, -0, Infinity, -Infinity, 1e300, 1e300))
  t.true(Number.isNaN(loads(bytes('Fnan\n.'))))
})

test("a dict that becomes a Map after it was shared is the Map everywhere (SETITEM, Python's protocol 2, and SETITEMS, dumps')", (t) => {
  // {}, memo 0; [ GET 0 ] as its own value under key 1 (a list holding it), set with SETITEM.
  const viaSetItem = loads(bytes(0x80, 2, 0x7d, 0x71, 0, 0x4b, 1, 0x5d, 0x68, 0, 0x61, 0x73, 0x2e)) as Map<number, unknown[]>
  t.true(viaSetItem instanceof Map)
  t.is(viaSetItem.get(1)?.[0], viaSetItem)
  const d = new Map<unknown, unknown>([['a', 0]])
  d.set(2, [d, { d }])
  const back = loads(dumps(d)) as Map<unknown, [unknown, { d: unknown }]>
  t.is(back.get(2)?.[0], back)
  t.is(back.get(2)?.[1].d, back)
})

test("a BUILD state's '__proto__' key is a key of the object built, not its prototype", (t) => {
  // An allowed global that builds a plain object, then BUILD with {'__proto__': [1]}.
  const stream = bytes(P4, 0x8c, 1, 'm', 0x8c, 1, 'P', 0x93, 0x29, 0x52, 0x7d, 0x8c, 9, '__proto__', 0x5d, 0x4b, 1, 0x61, 0x73, 0x62, 0x2e)
  const v = loads(stream, { globals: { 'm P': () => ({}) } }) as Record<string, unknown>
  t.is(Object.getPrototypeOf(v), Object.prototype)
  t.deepEqual(Object.getOwnPropertyDescriptor(v, '__proto__')?.value, [1])
})

test('300,000 dicts with int keys decode in one pass over the memo each (a scan of the memo per dict took minutes)', async (t) => {
  const pickle = JSON.stringify(new URL('../runtime/ipc/pickle.js', import.meta.url).href)
  // In a child killed after LONG ms: a quadratic decode fails by that bound instead of hanging the suite.
  const r = await runNode(`
    import { dumps, loads } from ${pickle}
    const stream = dumps(Array.from({ length: 300000 }, (_, i) => new Map([[i, i]])))
    const back = loads(stream)
    console.log(back.length, back[299999].get(299999))
  `)
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout.trim(), '300000 299999')
})

test('ints of a megabyte go both ways in linear time, and CPython reads the bytes dumps writes for them', async (t) => {
  const pickle = JSON.stringify(new URL('../runtime/ipc/pickle.js', import.meta.url).href)
  // In a child killed after LONG ms: dumps shifted the int a byte at a time (a 400 KB int took
  // two minutes), loads built its hex a digit at a time (a 10 MB LONG4 took 11 s).
  const r = await runNode(`
    import { spawnSync } from 'node:child_process'
    import { dumps, loads } from ${pickle}
    const out = []
    for (const sign of [1n, -1n]) {
      const v = sign * ((1n << 8_000_000n) + 12345n)
      const stream = dumps(v, { protocol: 2 })
      out.push(loads(stream) === v)
      const py = spawnSync('python3', ['-c', 'import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()) == ' + sign + ' * (2**8000000 + 12345))'], { input: stream, encoding: 'utf8' })
      out.push(py.status === 0 ? py.stdout.trim() : 'no python3')
    }
    console.log(out.join(' '))
  `)
  t.is(r.status, 0, r.stderr)
  const out = r.stdout.trim()
  t.true(out === 'true True true True' || out === 'true no python3 true no python3', out)
})

// ---------------------------------------------------------------------------------------------
// Truncation and fuzzing, over pickles from Python and from dumps

const FUZZ_VALUES = [
  "{'id': 123, 'name': 'item-123', 'tags': ['a', 'b'], 'score': 1.5}",
  "[1, -2**40, 2**70, 1.5, 'é😀', b'\\x00\\xff', bytearray(b'ab'), None, True, (1, 2), {1, 2}, frozenset({3})]",
  "(lambda s: {'a': s, 'b': s, 3: (s,)})([1, 'x'])",
  "[KeyError('k'), complex(1, 2), range(3), {(1, 'a'): {}}]",
  "(lambda a: (a.append(a), a)[1])([{'x': ()}])",
]
const FUZZ_JS: unknown[] = [
  { id: 123, name: 'item-123', tags: ['a', 'b'], score: 1.5 },
  [1, -(2 ** 40), 2n ** 70n, new PyFloat(2), 'é😀', Buffer.from([0, 255]), PyByteArray.from([97, 98]), null, true, tuple(1, 2), new Set([1, 2]), new PyFrozenSet([3])],
  new Map<unknown, unknown>([['a', shared], ['b', shared], [3, tuple(shared)]]),
  [new PyObject('builtins', 'KeyError', ['k']), new Map([[tuple(1, 'a'), {}]])],
  selfList(),
]

/** Python's pickles of FUZZ_VALUES at protocols 2–5 (system python3). */
async function pythonPickles(t: ExecutionContext): Promise<Buffer[]> {
  const py = python(t, process.env, `
import base64, pickle, sys
for e in ${JSON.stringify(FUZZ_VALUES)}:
    for p in (2, 3, 4, 5):
        print(base64.b64encode(pickle.dumps(eval(e), p)).decode())
`)
  py.end()
  const out: Buffer[] = []
  for (let next = await py.lines.next(); !next.done; next = await py.lines.next()) out.push(Buffer.from(next.value, 'base64'))
  const { code, stderr } = await py.exit
  t.is(code, 0, stderr)
  t.is(out.length, FUZZ_VALUES.length * 4)
  return out
}

const nodePickles = (): Buffer[] => FUZZ_JS.flatMap((v) => PROTOCOLS.map((protocol) => dumps(v, { protocol })))

test('every strict prefix of pickles from Python (with FRAMEs) and from dumps ends in UnpicklingError', async (t) => {
  const seeds = [...(await pythonPickles(t)), ...nodePickles()]
  let prefixes = 0
  const wrong: string[] = []
  for (const [k, seed] of seeds.entries()) {
    t.not(outcome(seed), 'UnpicklingError', `seed ${k} decodes whole`)
    for (let n = 0; n < seed.length; n++, prefixes++) {
      const o = outcome(seed.subarray(0, n))
      if (o !== 'UnpicklingError') wrong.push(`seed ${k}, ${n} of ${seed.length} bytes: ${o}`)
    }
  }
  t.log(`${prefixes} prefixes of ${seeds.length} pickles`)
  t.deepEqual(wrong, [])
})

/** mulberry32: a small seeded PRNG, so a failing stream can be made again. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return (((x ^ (x >>> 14)) >>> 0) / 2 ** 32) * n | 0
  }
}

/** One to three flips, inserts, deletes or duplicated runs of bytes. */
function mutate(seed: Buffer, rand: (n: number) => number): Buffer {
  let b = Buffer.from(seed)
  for (let k = 1 + rand(3); k > 0; k--) {
    const at = rand(b.length + 1)
    switch (rand(4)) {
      case 0:
        if (at < b.length) b[at] ^= 1 << rand(8)
        break
      case 1:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([rand(256)]), b.subarray(at)])
        break
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(4))])
        break
      default: {
        const run = b.subarray(at, at + 1 + rand(16))
        b = Buffer.concat([b.subarray(0, at), run, run, b.subarray(at + run.length)])
      }
    }
  }
  return b
}

test('fuzz: 6,000 mutated pickles (seeded) each decode or end in UnpicklingError, never another error', async (t) => {
  const seeds = [...(await pythonPickles(t)), ...nodePickles()]
  const rand = prng(0x5eed)
  const counts = { decoded: 0, UnpicklingError: 0 }
  const wrong: string[] = []
  for (let i = 0; i < 6000; i++) {
    const stream = mutate(seeds[i % seeds.length], rand)
    const o = outcome(stream)
    if (o === 'decoded' || o === 'UnpicklingError') counts[o]++
    else wrong.push(`stream ${i} (${stream.toString('hex').slice(0, 120)}): ${o}`)
  }
  t.log(`${counts.decoded} decoded, ${counts.UnpicklingError} refused with UnpicklingError`)
  t.deepEqual(wrong, [])
  t.true(counts.decoded > 0 && counts.UnpicklingError > 0, 'the mutations reach both outcomes')
})

// ---------------------------------------------------------------------------------------------
// What dumps refuses

test('dumps refuses functions, class instances and symbols with PicklingError', (t) => {
  class Point {
    x = 1
  }
  const refused: Array<[string, unknown]> = [
    ['a function', () => 1],
    ['a class instance', new Point()],
    ['a Date', new Date(0)],
    ['a Promise', Promise.resolve()],
    ['a symbol', Symbol('s')],
    ['a function inside a dict', { f: () => 1 }],
    ['a class instance inside a Map', new Map([[1, new Point()]])],
    ['a list as a dict key', new Map([[[1], 2]])],
    ['a tuple that holds itself', (() => {
      const l: unknown[] = []
      const tp = tuple(l)
      l.push(tp)
      return tp
    })()],
  ]
  for (const [what, value] of refused) t.throws(() => dumps(value), { instanceOf: PicklingError }, what)
  t.throws(() => dumps(1, { protocol: 6 as 5 }), { instanceOf: PicklingError })
  t.throws(() => dumps(new PyObject('m', 'C', [], undefined, true, { k: 1 }), { protocol: 3 }), { instanceOf: PicklingError, message: /protocol 4/ })
})

test("dumps' depth limit is a PicklingError, also when maxDepth is beyond what the stack holds", (t) => {
  const nested = (n: number): unknown[] => {
    let v: unknown[] = []
    for (let i = 0; i < n; i++) v = [v]
    return v
  }
  t.throws(() => dumps(nested(1001)), { instanceOf: PicklingError, message: /nests more than 1000/ })
  t.notThrows(() => dumps(nested(999)))
  t.throws(() => dumps(nested(50), { maxDepth: 10 }), { instanceOf: PicklingError })
  const e = t.throws(() => dumps(nested(1_000_000), { maxDepth: 1e9 }), { instanceOf: PicklingError })
  t.true(e?.cause instanceof RangeError)
})
