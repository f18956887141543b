// Node and CPython 3.11, 3.12 and 3.13 in one system: objects over Connection with the 'pickle'
// serializer both ways, Python clients of a Node AioManager, Node clients of a Python SyncManager,
// queues and locks shared across the languages on both server sides, and hostile pickles sent to a
// Node manager and a Node listener that go on serving a good Python client.
import ava from 'ava'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AioClient, AioListener, AioManager, AioPipe, AioPool, type AioQueueProxy, EOFError, Empty, OSError, RemoteError, RuntimeError, UnpicklingError, ValueError, pickle, type AioCondition, type AioLock, type AioQueue, type PyTuple } from '../generated/index.generated.js'
import { ENTRY, FD_COUNTING, LONG, python, pythons, runNodeUnderFdLimit } from './helpers.js'

// One test at a time: many of these block this process's event loop in a call that waits for a
// Python process (a blocking get of 1,500 items, a 5 s dropped handshake by design), and a test
// running beside one stalled that long: its awaited puts did not reach its Python partner, whose
// get(timeout=20) gave up (CI saw a Barrier's sliced wait broken, 60 awaitable calls past their
// bound, queues across languages Empty, in 2 of 4 runs).
const test = ava.serial

/** A Python process whose stdout lines are collected; `line(i)` waits (bounded) for the i-th. */
interface Py {
  child: ChildProcessWithoutNullStreams
  lines: string[]
  line(i: number): Promise<string>
  closed: Promise<number | null>
  err(): string
}

function startPython(t: { teardown(f: () => void): void }, env: NodeJS.ProcessEnv, script: string): Py {
  // No timeout of its own: a manager must outlive a slow run of its test (the teardown ends it).
  const child = spawn('python3', ['-u', '-c', script], { env })
  t.teardown(() => child.kill('SIGKILL'))
  const lines: string[] = []
  let err = ''
  let rest = ''
  child.stdout.on('data', (d) => {
    rest += d
    const parts = rest.split('\n')
    rest = parts.pop()!
    lines.push(...parts)
  })
  child.stderr.on('data', (d) => (err += d))
  const closed = new Promise<number | null>((r) => child.on('close', r))
  let done = false
  void closed.then(() => (done = true))
  return {
    child,
    lines,
    closed,
    err: () => err,
    async line(i) {
      const end = Date.now() + LONG
      while (lines.length <= i) {
        if (done) throw new Error(`python ended before line ${i}: ${lines.join('\n')}\n${err}`)
        if (Date.now() > end) throw new Error(`python did not print line ${i} in time: ${lines.join('\n')}\n${err}`)
        await new Promise((r) => setTimeout(r, 5))
      }
      return lines[i]
    },
  }
}

const TARGETS = new URL('./targets.js', import.meta.url).href

/** A Python SyncManager serving at a free port, with registered getters of shared objects; prints the port. */
const PY_MANAGER = `
import queue, sys, threading
from multiprocessing.managers import SyncManager
jobs, to_python, to_node, lock = queue.Queue(), queue.Queue(), queue.Queue(), threading.Lock()
class M(SyncManager): pass
M.register('get_jobs', callable=lambda: jobs)
M.register('get_to_python', callable=lambda: to_python)
M.register('get_to_node', callable=lambda: to_node)
M.register('get_lock', callable=lambda: lock, proxytype=__import__('multiprocessing.managers').managers.AcquirerProxy)
m = M(('127.0.0.1', 0), authkey=b'secret')
s = m.get_server()
print(s.address[1], flush=True)
s.serve_forever()
`

/**
 * Both server sides for one Python version: a Node AioManager (started as a process) with the
 * shared objects of test/targets.ts registered, and a Python SyncManager (PY_MANAGER). `connect`
 * is the Python code that reaches it as \`m\`, with the getters registered.
 */
async function managers(t: { teardown(f: () => void): void }, env: NodeJS.ProcessEnv): Promise<{ name: string; connect: string; manager: AioManager }[]> {
  const dir = mkdtempSync(join(tmpdir(), 'aio-py-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const node = new AioManager({ address: join(dir, 'n.sock'), authkey: 'secret' })
  node.register('get_to_python', { module: TARGETS, name: 'toPython' })
  node.register('get_to_node', { module: TARGETS, name: 'toNode' })
  node.register('get_lock', { module: TARGETS, name: 'sharedLock' })
  node.start()
  t.teardown(() => node.shutdown())
  const server = startPython(t, env, PY_MANAGER)
  const port = Number(await server.line(0))
  const python = new AioManager({ address: ['127.0.0.1', port], authkey: 'secret', serializer: 'pickle' })
  python.connect()
  t.teardown(() => python.shutdown())
  const register = "M.register('get_to_python'); M.register('get_to_node'); M.register('get_lock')"
  return [
    { name: 'Node server', connect: `from multiprocessing.managers import SyncManager\nclass M(SyncManager): pass\n${register}\nm = M(${JSON.stringify(join(dir, 'n.sock'))}, authkey=b'secret'); m.connect()`, manager: node },
    { name: 'Python server', connect: `from multiprocessing.managers import SyncManager\nclass M(SyncManager): pass\n${register}\nm = M(('127.0.0.1', ${port}), authkey=b'secret'); m.connect()`, manager: python },
  ]
}

/** The values of the Connection checks, as Python literals and as what Node reads. */
const VALUES: [python: string, node: unknown][] = [
  ['None', null],
  ['True', true],
  ['-7', -7],
  ['2**70', 2n ** 70n],
  ['1.5', 1.5],
  ["'héllo ✓'", 'héllo ✓'],
  ["b'\\x00\\xff'", Buffer.from([0, 255])],
  ['[1, [2, 3]]', [1, [2, 3]]],
  ["(1, 'a')", pickle.tuple(1, 'a')],
  ["{'k': [1], 'n': None}", { k: [1], n: null }],
  ["{1: 'one', (2, 3): 'pair'}", new Map<unknown, unknown>([[1, 'one'], [pickle.tuple(2, 3), 'pair']])],
  ['{1, 2}', new Set([1, 2])],
]

for (const [version, env] of pythons()) {
  const run = env.SKIP ? test.skip : test
  if (env.SKIP) console.log(`# python ${version} not found: its interop tests are skipped`)

  run(`Connection objects both ways with Python ${version}: Node AioListener ⇄ Python Client, Python Listener ⇄ Node AioClient`, async (t) => {
    // Node listens: Python sends each value, Node checks it and sends it back; Python checks the echo.
    const listener = new AioListener(['127.0.0.1', 0], { authkey: 'k', serializer: 'pickle' })
    t.teardown(() => listener.close())
    const py = startPython(t, env, `
from multiprocessing.connection import Client
c = Client(('127.0.0.1', ${(listener.address as [string, number])[1]}), authkey=b'k')
for v in [${VALUES.map(([p]) => p).join(', ')}]:
    c.send(v)
    back = c.recv()
    print('same' if back == v and type(back) == type(v) else 'DIFFERENT %r %r' % (v, back), flush=True)
`)
    const conn = await listener.coro_accept()
    for (const [, want] of VALUES) {
      const got = await conn.coro_recv()
      t.deepEqual(got, want)
      await conn.coro_send(got)
    }
    t.is(await py.closed, 0, py.err())
    t.deepEqual(py.lines, VALUES.map(() => 'same'))
    conn.close()

    // Python listens: Node sends, Python answers repr(value), type name.
    const server = startPython(t, env, `
from multiprocessing.connection import Listener
with Listener(('127.0.0.1', 0), authkey=b'k') as l:
    print(l.address[1], flush=True)
    with l.accept() as c:
        while True:
            try:
                v = c.recv()
            except EOFError:
                break
            c.send((type(v).__name__, v))
`)
    const client = await AioClient.coro(['127.0.0.1', Number(await server.line(0))], { authkey: 'k', serializer: 'pickle' })
    const sent: [unknown, string][] = [[pickle.tuple(1, 2), 'tuple'], [[1, 2], 'list'], [{ a: 1 }, 'dict'], [new Map([[1, 2]]), 'dict'], [2n ** 64n, 'int'], [3, 'int'], [0.5, 'float'], [new pickle.PyFloat(2), 'float'], [new Uint8Array([1]), 'bytes'], [undefined, 'NoneType'], [new Set(['x']), 'set']]
    for (const [v, type] of sent) {
      client.send(v)
      const [name, back] = client.recv() as PyTuple
      t.is(name, type)
      t.deepEqual(back, v instanceof pickle.PyFloat ? 2 : v instanceof Uint8Array ? Buffer.from(v) : v === undefined ? null : v)
    }
    client.close()
    t.is(await server.closed, 0, server.err())
  })

  run(`Python ${version} clients use a Node AioManager's objects (started as a process), at the address Node clients use`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'aio-py-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const m = new AioManager({ address: join(dir, 'm.sock'), authkey: 'secret' })
    m.start()
    t.teardown(() => m.shutdown())
    // A Node client of the same manager, in the library's own protocol, beside the Python one.
    const nodeQueue = m.Queue()
    nodeQueue.put('from node')
    const r = await python(env, `
from multiprocessing.managers import SyncManager
import queue, threading
m = SyncManager(${JSON.stringify(join(dir, 'm.sock'))}, authkey=b'secret')
m.connect()
out = []
q = m.Queue()
q.put({'a': (1, 2)})
out.append(q.get(timeout=5) == {'a': (1, 2)})
try:
    q.get(timeout=0.05); out.append(False)
except queue.Empty:
    out.append(True)
q2 = m.Queue(1); q2.put(1)
try:
    q2.put(2, timeout=0.05); out.append(False)
except queue.Full:
    out.append(True)
q3 = m.Queue(1); q3.put_nowait('n')
try:
    q3.put_nowait('m'); out.append(False)
except queue.Full:
    out.append(q3.get_nowait() == 'n')
try:
    q3.get_nowait(); out.append(False)
except queue.Empty:
    out.append(True)
l = m.Lock()
with l:
    out.append(l.acquire(False) is False)
out.append(l.acquire(timeout=0.05) is True); l.release()
rl = m.RLock(); rl.acquire(); rl.acquire(); rl.release(); rl.release(); out.append(True)
e = m.Event(); out.append(e.wait(0.01) is False); e.set(); out.append(e.is_set() and e.wait(1))
d = m.dict({'x': 1}); d['y'] = [1]; d[(1, 2)] = 'pair'
out.append(d['x'] == 1 and len(d) == 3 and d.get('z', 5) == 5 and d[(1, 2)] == 'pair' and sorted(map(str, d.keys())) == ['(1, 2)', 'x', 'y'])
out.append(sorted(map(str, d)) == ['(1, 2)', 'x', 'y'])
try:
    d['nope']; out.append(False)
except KeyError as ex:
    out.append(ex.args == ('nope',))
li = m.list([3, 1, 2]); li.append(0); li.sort(); li += [9]
out.append(li[:] == [0, 1, 2, 3, 9] and li[1:3] == [1, 2] and len(li) == 5 and li[-1] == 9 and 2 in li)
try:
    li[10]; out.append(False)
except IndexError:
    out.append(True)
ns = m.Namespace(a=1); ns.b = 2; out.append(ns.a == 1 and ns.b == 2)
try:
    ns.zz; out.append(False)
except AttributeError:
    out.append(True)
v = m.Value('i', 7); v.value += 1; out.append(v.value == 8)
s = m.Semaphore(2); out.append([s.acquire(), s.acquire(), s.acquire(timeout=0.05)] == [True, True, False])
bs = m.BoundedSemaphore(1); bs.acquire(); bs.release()
try:
    bs.release(); out.append(False)
except ValueError:
    out.append(True)
c = m.Condition()
with c:
    out.append(c.wait(0.02) is False)
b = m.Barrier(1); out.append(b.wait() == 0 and b.parties == 1 and b.broken is False)
jq = m.JoinableQueue(); jq.put(1); jq.get(); jq.task_done(); jq.join(); out.append(True)
print(out)
print(m.Queue().get(timeout=0.01) if False else 'ok')
`)
    t.is(r.code, 0, r.err)
    const flags = r.out.split('\n')[0]
    t.false(flags.includes('False'), flags)
    t.is(flags.split(',').length, 23, flags)
    t.is(nodeQueue.get(false), 'from node')
  })

  run(`Node uses a Python ${version} SyncManager's objects: every typeid, registered getters, Python's errors as the library's`, async (t) => {
    const py = startPython(t, env, PY_MANAGER)
    const m = new AioManager({ address: ['127.0.0.1', Number(await py.line(0))], authkey: 'secret', serializer: 'pickle' })
    m.connect()
    t.teardown(() => m.shutdown())
    const q = m.Queue()
    q.put({ a: pickle.tuple(1, 2) })
    t.deepEqual(q.get(), { a: pickle.tuple(1, 2) })
    t.throws(() => q.get(true, 30), { instanceOf: Empty })
    await q.coro_put(5)
    t.is(await q.coro_get(), 5)
    t.is(q.qsize(), 0)
    t.true(q.empty())
    const l = m.Lock()
    t.true(l.acquire())
    t.false(l.acquire(false))
    t.false(await l.coro_acquire(true, 30))
    l.release()
    const rl = m.RLock()
    t.true(rl.acquire())
    t.true(rl.acquire())
    rl.release()
    rl.release()
    const e = m.Event()
    t.false(e.wait(10))
    e.set()
    t.true(e.isSet())
    t.true(await e.coro_wait(1000))
    const d = m.dict<unknown, unknown>()
    d.set('k', [1, 2])
    d.set(3, 'x')
    t.deepEqual(d.get('k'), [1, 2])
    t.is(d.get('nope', 'fallback'), 'fallback')
    t.is(d.getitem(3), 'x')
    t.is(d.len(), 2)
    t.true(d.has(3))
    t.deepEqual(d.keys(), ['k', 3])
    t.deepEqual(d.items(), [pickle.tuple('k', [1, 2]), pickle.tuple(3, 'x')])
    const missing = t.throws(() => d.getitem('nope'), { instanceOf: RemoteError })
    t.is(missing?.pythonType, 'KeyError')
    const li = m.list([3, 1])
    li.append(2)
    t.deepEqual(li.toArray(), [3, 1, 2])
    t.deepEqual(li.slice(0, 2), [3, 1])
    t.is(li.len(), 3)
    // Python's ListProxy exposes sort, its reverse by keyword only.
    li.sort()
    t.deepEqual(li.toArray(), [1, 2, 3])
    await li.coro_sort(true)
    t.deepEqual(li.toArray(), [3, 2, 1])
    li.clear()
    t.is(li.len(), 0)
    const ns = m.Namespace({ a: 1 }) as Record<string, unknown>
    ns.b = 2
    t.is(ns.a, 1)
    t.is(ns.b, 2)
    t.false('c' in ns)
    const v = m.Value('i', 3)
    v.value = 9
    t.is(v.value, 9)
    const b = m.Barrier(1)
    t.is(b.wait(), 0)
    t.is(b.parties, 1)
    t.false(b.broken)
    const c = m.Condition()
    t.true(c.acquire())
    t.false(c.wait(10))
    c.notifyAll()
    c.release()
    const s = m.Semaphore(1)
    t.true(s.acquire())
    t.false(s.acquire(true, 10))
    s.release()
    const jq = m.JoinableQueue()
    jq.put(1)
    jq.get()
    jq.taskDone()
    jq.join()
    const jobs = m.create('get_jobs') as unknown as { put(v: unknown): void; get(): unknown; qsize(): number; constructor: { name: string } }
    t.is(jobs.constructor.name, 'AioJoinableQueueProxy')
    jobs.put('job')
    t.is(jobs.get(), 'job')
    // An aborted coro_get takes nothing: the item put after the abort is still there.
    const ac = new AbortController()
    const pending = q.coro_get(true, null, { signal: ac.signal })
    ac.abort()
    await t.throwsAsync(pending, { any: true, name: 'AbortError' })
    q.put('after')
    t.is(q.get(false), 'after')
  })

  run(`a queue across languages, both server sides (Python ${version}): Node → Python and Python → Node, nothing lost or doubled`, async (t) => {
    const N = 1500
    for (const side of await managers(t, env)) {
      const toPython = side.manager.create('get_to_python') as unknown as AioQueue
      const toNode = side.manager.create('get_to_node') as unknown as AioQueue
      const py = startPython(t, env, `
${side.connect}
to_python = m.get_to_python(); to_node = m.get_to_node()
got = [to_python.get(timeout=20) for _ in range(${N})]
for i in range(${N}):
    to_node.put(('py', i))
print(len(got), len(set(map(tuple, got))), sorted(got) == [['node', i] for i in range(${N})], flush=True)
`)
      for (let i = 0; i < N; i++) {
        if (i % 2) toPython.put(['node', i])
        else await toPython.coro_put(['node', i])
      }
      const got: unknown[] = []
      for (let i = 0; i < N; i++) got.push(i % 2 ? toNode.get(true, LONG) : await toNode.coro_get(true, LONG))
      t.is(await py.closed, 0, `${side.name}: ${py.err()}`)
      t.is(py.lines[0], `${N} ${N} True`, side.name)
      t.deepEqual(got, Array.from({ length: N }, (_, i) => pickle.tuple('py', i)), side.name)
      t.true(toNode.empty() && toPython.empty(), side.name)
    }
  })

  run(`a lock across languages, both server sides (Python ${version}): held by Python, Node's coro_acquire waits for its release, and the reverse`, async (t) => {
    for (const side of await managers(t, env)) {
      const lock = side.manager.create('get_lock') as unknown as AioLock
      const py = startPython(t, env, `
import sys
${side.connect}
lock = m.get_lock()
lock.acquire()
print('held', flush=True)
sys.stdin.readline()
lock.release()
print('released', flush=True)
sys.stdin.readline()
print('try', lock.acquire(timeout=0.05), flush=True)
print('waiting', flush=True)
lock.acquire()
print('got', flush=True)
lock.release()
`)
      t.is(await py.line(0), 'held', side.name)
      let settled = false
      const acquired = lock.coro_acquire(true, LONG).then((r) => ((settled = true), r))
      // Held by Python: a try from Node fails, and the awaited acquire is still waiting after it.
      t.false(lock.acquire(false), side.name)
      t.false(await lock.coro_acquire(true, 20), side.name)
      t.false(settled, side.name)
      py.child.stdin.write('\n')
      t.true(await acquired, side.name)
      t.is(await py.line(1), 'released', side.name)
      // Held by Node: Python's timed acquire fails, its blocking one returns once Node releases.
      py.child.stdin.write('\n')
      t.is(await py.line(2), 'try False', side.name)
      t.is(await py.line(3), 'waiting', side.name)
      t.is(py.lines.length, 4, side.name)
      lock.release()
      t.is(await py.line(4), 'got', side.name)
      t.is(await py.closed, 0, py.err())
    }
  })
}

test('a connection on the default serializer that receives a pickle says to open it with the pickle serializer', async (t) => {
  const [a, b] = AioPipe()
  b.sendBytes(pickle.dumps({ from: 'python' }))
  t.throws(() => a.recv(), { instanceOf: ValueError, message: /received a Python pickle.*serializer: 'pickle'/ })
  const [c, d] = AioPipe(true, { serializer: 'pickle' })
  d.send(pickle.tuple(1, { x: 2n ** 80n }))
  t.deepEqual(c.recv(), pickle.tuple(1, { x: 2n ** 80n }))
  // A stream that is not a pickle fails that recv only; the next message is read.
  d.sendBytes(Buffer.from([0x80, 0x04, 0x63, 0x6f, 0x73, 0x0a]))
  t.throws(() => c.recv(), { instanceOf: UnpicklingError })
  d.send('next')
  t.is(c.recv(), 'next')
  for (const x of [a, b, c, d]) x.close()
})

test("a connection with the pickle serializer works in a pool's worker it was passed to (a worker loads the pickle module only with the library's classes)", async (t) => {
  const [mine, theirs] = AioPipe(true, { serializer: 'pickle' })
  const pool = new AioPool({ processes: 1 })
  t.teardown(() => {
    pool.terminate()
    mine.close()
    theirs.close()
  })
  const task = pool.coro_apply((conn: { send(x: unknown): void; recv(): unknown }) => conn.send([conn.recv(), 'from the worker']), [theirs])
  mine.send(pickle.tuple(1, 2n ** 70n))
  t.deepEqual(await mine.coro_recv({ signal: AbortSignal.timeout(LONG) }), [pickle.tuple(1, 2n ** 70n), 'from the worker'])
  await task
})

/** A deterministic PRNG (mulberry32), so a failing fuzz case is the same on every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** One mutation of a stream: bytes flipped, inserted, deleted, duplicated or cut off. */
function mutate(base: Buffer, rand: () => number): Buffer {
  const b = [...base]
  const edits = 1 + Math.floor(rand() * 4)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (b.length + 1))
    switch (Math.floor(rand() * 5)) {
      case 0:
        if (at < b.length) b[at] = Math.floor(rand() * 256)
        break
      case 1:
        b.splice(at, 0, Math.floor(rand() * 256))
        break
      case 2:
        b.splice(at, 1)
        break
      case 3:
        b.splice(at, 0, ...b.slice(at, at + 1 + Math.floor(rand() * 8)))
        break
      default:
        b.length = Math.max(0, Math.min(b.length, at))
    }
  }
  return Buffer.from(b)
}

const [, good] = pythons().find(([, env]) => !env.SKIP) ?? ['', { SKIP: '1' }]
const withPython = good.SKIP ? test.skip : test

/** A Python manager of the class M that `code` defines, serving at a free port, and a Node manager connected to it; the test ends both. */
async function pythonServing(t: { teardown(f: () => void): void }, code: string): Promise<{ py: Py; m: AioManager }> {
  const py = startPython(t, good, `${code}
s = M(('127.0.0.1', 0), authkey=b'secret').get_server()
print(s.address[1], flush=True)
s.serve_forever()
`)
  const m = new AioManager({ address: ['127.0.0.1', Number(await py.line(0))], authkey: 'secret', serializer: 'pickle' })
  m.connect()
  t.teardown(() => m.shutdown())
  return { py, m }
}

/** A Node AioManager started as a process, at a Unix socket in a folder of its own, with `registry`'s typeids; the test ends both. */
function nodeManager(t: { teardown(f: () => void): void }, registry: Record<string, string> = {}): { dir: string; address: string; m: AioManager } {
  const dir = mkdtempSync(join(tmpdir(), 'aio-py-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const address = join(dir, 'm.sock')
  const m = new AioManager({ address, authkey: 'secret' })
  // typeid → an export of test/targets.ts.
  for (const [typeid, name] of Object.entries(registry)) m.register(typeid, { module: TARGETS, name })
  m.start()
  t.teardown(() => m.shutdown())
  return { dir, address, m }
}

withPython('1,000+ hostile pickles against a Node manager and a Node listener: every one answered or refused, and a good Python client is served afterwards', async (t) => {
  const { dir, address, m } = nodeManager(t)
  const { tuple } = pickle
  const bases = [
    tuple(null, 'dummy', tuple(), {}),
    tuple(null, 'create', tuple('Queue', 2), {}),
    tuple(null, 'create', tuple('dict', new Map<unknown, unknown>([[tuple(1, 2), [1, 2n ** 70n]]])), {}),
    tuple(null, 'create', tuple('Namespace'), { a: 1, b: 'x' }),
    tuple(null, 'incref', tuple(1), {}),
    tuple(null, 'decref', tuple(2), {}),
    tuple(null, 'accept_connection', tuple('fuzz'), {}),
    tuple(1, 'put', tuple('item', true, 0.01), {}),
    tuple(1, 'get', tuple(true, 0.01), {}),
    tuple(2, '__setitem__', tuple(tuple('k', 1), Buffer.alloc(40, 7)), {}),
    tuple(3, '__getattribute__', tuple('a'), {}),
  ].map((v) => pickle.dumps(v))
  const rand = prng(20261130)
  const outcome = { answered: 0, cut: 0, silent: 0 }
  let conn: ReturnType<typeof AioClient> | undefined
  const STREAMS = 1200
  for (let i = 0; i < STREAMS; i++) {
    if (!conn) {
      conn = await AioClient.coro(address, { authkey: 'secret', serializer: 'pickle' })
      // Some connections are proxy connections first, so that object calls are fuzzed too.
      if (i % 3 === 1) {
        await conn.coro_send(tuple(null, 'accept_connection', tuple('fuzz'), {}))
        await conn.coro_recv()
      }
    }
    const stream = mutate(bases[Math.floor(rand() * bases.length)], rand)
    try {
      await conn.coro_sendBytes(stream)
      // An answer, the server cutting the connection (a first message that is not a pickle), or a
      // call that waits (a get with no timeout): the connection is replaced in the last two cases.
      if (await conn.coro_poll(2000)) {
        await conn.coro_recvBytes()
        outcome.answered++
        // A fresh connection now and then, so that first messages (which pick the protocol) are fuzzed too.
        if (i % 20) continue
      } else outcome.silent++
    } catch {
      outcome.cut++
    }
    conn.close()
    conn = undefined
  }
  conn?.close()
  t.log(`manager: ${JSON.stringify(outcome)}`)
  t.is(outcome.answered + outcome.cut + outcome.silent, STREAMS)
  t.true(outcome.answered > STREAMS / 2, JSON.stringify(outcome))

  // The listener: each mutated stream is a value or an UnpicklingError on recv, nothing else.
  const listener = new AioListener(join(dir, 'l.sock'), { authkey: 'k', serializer: 'pickle' })
  t.teardown(() => listener.close())
  const sender = await AioClient.coro(join(dir, 'l.sock'), { authkey: 'k' })
  const receiver = await listener.coro_accept()
  const counts = { decoded: 0, refused: 0 }
  for (let i = 0; i < STREAMS; i++) {
    await sender.coro_sendBytes(mutate(bases[i % bases.length], rand))
    try {
      await receiver.coro_recv()
      counts.decoded++
    } catch (error) {
      t.true(error instanceof UnpicklingError, String(error))
      counts.refused++
    }
  }
  sender.close()
  receiver.close()
  t.log(`listener: ${JSON.stringify(counts)}`)
  t.true(counts.refused > 0 && counts.decoded + counts.refused === STREAMS)

  // Both still serve a good Python client.
  const py = startPython(t, good, `
from multiprocessing.managers import SyncManager
from multiprocessing.connection import Client
m = SyncManager(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
q = m.Queue(); q.put((1, 'x')); d = m.dict(); d[(1, 2)] = 3
print(q.get(timeout=5) == (1, 'x') and d[(1, 2)] == 3, flush=True)
c = Client(${JSON.stringify(join(dir, 'l.sock'))}, authkey=b'k'); c.send({'still': 'serving'}); print(c.recv(), flush=True)
`)
  const last = await listener.coro_accept()
  t.deepEqual(await last.coro_recv(), { still: 'serving' })
  await last.coro_send('yes')
  t.is(await py.closed, 0, py.err())
  t.deepEqual(py.lines, ['True', 'yes'])
  last.close()
  // And the library's own clients.
  const q = m.Queue()
  q.put(1)
  t.is(q.get(), 1)
})

/** A Python SyncManager at a free port that prints the port, then its number of objects for each line on stdin. */
const PY_COUNTING_MANAGER = `
import sys, threading
from multiprocessing.managers import SyncManager
s = SyncManager(('127.0.0.1', 0), authkey=b'secret').get_server()
print(s.address[1], flush=True)
def count():
    for _ in sys.stdin:
        print(len(s.id_to_refcount), flush=True)
threading.Thread(target=count, daemon=True).start()
s.serve_forever()
`

withPython('1,000 proxies of a Python manager made and collected under ulimit -n 256: decrefs go one at a time, the fds come back and Python frees the objects', async (t) => {
  const py = startPython(t, good, PY_COUNTING_MANAGER)
  const port = Number(await py.line(0))
  // Collections free proxies by the hundred at once (forced here with gc()): a decref connection
  // each, all at once, ran out of fds after the second collection.
  const script = `
    import { AioManager } from ${ENTRY}
    import { setFlagsFromString } from 'node:v8'
    import { runInNewContext } from 'node:vm'
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc')
    ${FD_COUNTING}
    const m = new AioManager({ address: ['127.0.0.1', ${port}], authkey: 'secret', serializer: 'pickle' })
    m.connect()
    const base = fds()
    let most = 0
    for (let i = 0; i < 1000; i++) {
      const q = i % 2 ? m.Queue() : await m.coro_Queue()
      q.put(i)
      if ((i % 3 ? q.get() : await q.coro_get()) !== i) throw new Error('wrong item')
      if (i % 100 === 99) {
        gc()
        await new Promise((r) => setTimeout(r, 0))
        most = Math.max(most, fds() - base)
      }
    }
    gc()
    // shutdown() closes the idle connections this thread kept; the decrefs may go on a while.
    m.shutdown()
    const end = Date.now() + 20_000
    while ((await settled()) > base && Date.now() < end);
    console.log(most, fds() - base)
  `
  const { status, stdout: out, stderr: err } = await runNodeUnderFdLimit(script)
  t.is(status, 0, err)
  const [most, left] = out.trim().split(' ').map(Number)
  t.true(most <= 16, `${most} fds more than at the start`)
  t.true(left <= 0, `${left} fds left after shutdown()`)
  // Every proxy's decref reached Python (the script's process stays until they are sent).
  py.child.stdin.write('\n')
  t.true(Number(await py.line(1)) <= 2, `${py.lines[1]} objects left on the Python manager`)
})

withPython("a Python client's list and dict calls on a Node manager mean what they mean in Python: range and pairs taken, [] * 10**9 cheap, [1] * 10**9 a MemoryError (it ended the manager), a million items extended", async (t) => {
  const { address, m } = nodeManager(t)
  const r = await python(good, `
from multiprocessing.managers import SyncManager
m = SyncManager(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
def error(f):
    try:
        f()
        return 'no error'
    except Exception as e:
        return type(e).__name__ + ': ' + str(e).strip().splitlines()[-2 if type(e).__name__ == 'RemoteError' else -1].strip()
l = m.list(range(10))
print(l[:])
l[::2] = 'abcde'
l[2:5] = range(3)
l.extend(range(2))
print(l[:])
empty = m.list()
print(len(empty * 10**9), len(10**9 * empty), len(empty * 2**70))
empty *= 10**9
print(len(empty))
one = m.list([1])
print(error(lambda: one * 10**9))
print(error(lambda: one * 2.5))
print(one * 3, one * True, one * -1)
big = m.list()
big.extend(list(range(1_000_000)))
big[0:0] = list(range(1_000_000))
print(len(big))
d = m.dict([(1, 2), ((1, 2), b'x')])
d.update([('a', 'b')], z=5)
print(sorted(map(repr, d.items())))
print(error(lambda: m.dict([(1, 2, 3)])))
print(error(lambda: m.Queue(foo=1)))
s = m.list([(10,), (9,), (9, 1)])
s.sort()
print(s[:])
print(error(lambda: m.list([1, 'a']).sort()))
`)
  t.is(r.code, 0, r.err)
  t.deepEqual(r.out.trim().split('\n'), [
    '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]',
    "['a', 1, 0, 1, 2, 5, 'd', 7, 'e', 9, 0, 1]",
    '0 0 0',
    '0',
    'MemoryError: a list of more than 16777216 items on a Node manager',
    "TypeError: can't multiply sequence by non-int of type 'float'",
    '[1, 1, 1] [1] []',
    '2000000',
    `["('a', 'b')", "('z', 5)", "((1, 2), b'x')", '(1, 2)']`,
    'RemoteError: ValueError: dictionary update sequence element #0 has length 3; 2 is required',
    "RemoteError: TypeError: Queue() got an unexpected keyword argument 'foo'",
    '[(9,), (9, 1), (10,)]',
    "TypeError: '<' not supported between instances of 'str' and 'int'",
  ])
  // Still serving.
  const q = m.Queue()
  q.put(1)
  t.is(q.get(), 1)
})

withPython('a Python peer that sends requests and reads no answers is served no further than its socket takes (each answer waited in the heap before), then fully once it reads', async (t) => {
  const { address, m } = nodeManager(t)
  // Each copy of the list (about 1.5 MB) is more than the socket's buffers hold; the Python
  // process must read them all within its time bound, under load too.
  const ITEMS = 300_000
  const l = m.list<number>()
  l.extend(Array.from({ length: ITEMS }, (_, i) => i))
  m.publish('get_list', l)
  const ROUNDS = 100
  const py = startPython(t, good, `
import pickle, sys
from multiprocessing.managers import SyncManager
from multiprocessing.connection import Client
class M(SyncManager): pass
M.register('get_list')
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
shared = m.get_list()  # kept: the object lives while a proxy does
ident = shared._token.id
c = Client(${JSON.stringify(address)}, authkey=b'secret')
c.send((None, 'accept_connection', ('reads-nothing',), {})); c.recv()
# A copy of the whole list (megabytes), then an append: the appends count the answers made.
for i in range(${ROUNDS}):
    c.send((ident, '#GETVALUE', (), {}))
    c.send((ident, 'append', (i,), {}))
print('sent', flush=True)
sys.stdin.readline()
answers = [c.recv() for _ in range(2 * ${ROUNDS})]
print(all(a[0] == '#RETURN' for a in answers), flush=True)
`)
  t.is(await py.line(0), 'sent')
  // Not a wait for something to happen: a bound on how much did, a while after all was sent.
  await new Promise((r) => setTimeout(r, 1000))
  t.true(l.len() - ITEMS <= 2, `${l.len() - ITEMS} requests answered to a peer that read none`)
  py.child.stdin.write('\n')
  t.is(await py.line(1), 'True')
  t.is(l.len(), ITEMS + ROUNDS)
  t.is(await py.closed, 0, py.err())
})

withPython('a Python client that reads each large answer gets the next: a wait for room in the socket asked after the room came back waited forever', async (t) => {
  const { address } = nodeManager(t)
  const r = await python(good, `
from multiprocessing.managers import SyncManager
m = SyncManager(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
l = m.list(list(range(100000)))
print([len(l[:]) for _ in range(3)])
`)
  t.is(r.code, 0, r.err)
  t.is(r.out.trim(), '[100000, 100000, 100000]')
})

withPython("a dict, list and Namespace a Node client made and published: a Python client indexes them (Python's calls were refused), with tuple, bytes and int keys both ways", async (t) => {
  const { address, m } = nodeManager(t)
  const d = m.dict<unknown, string>()
  d.set(pickle.tuple(1, 2), 'tuple')
  d.set(Buffer.from('b'), 'bytes')
  d.set(2n ** 70n, 'big')
  const l = m.list<number>([3, 1, 2])
  const ns = m.Namespace({ a: 1 }) as unknown as Record<string, unknown>
  m.publish('get_d', d)
  m.publish('get_l', l)
  m.publish('get_ns', ns)
  const r = await python(good, `
from multiprocessing.managers import SyncManager, DictProxy, ListProxy, NamespaceProxy
class M(SyncManager): pass
M.register('get_d', proxytype=DictProxy)
M.register('get_l', proxytype=ListProxy)
M.register('get_ns', proxytype=NamespaceProxy)
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
d, l, ns = m.get_d(), m.get_l(), m.get_ns()
print(d[(1, 2)], d[b'b'], d[2**70], (1, 2) in d, [1, 2] in list(d.keys()), sorted(map(repr, d.items()))[0])
d[(5, 6)] = 'py tuple'; d[b'pb'] = 'py bytes'; d[7] = 'py int'
l.sort(); l.append(4); print(l[:], l[-1])
print(ns.a); ns.b = 'py'
`)
  t.is(r.code, 0, r.err)
  t.deepEqual(r.out.trim().split('\n'), ["tuple bytes big True False ((1, 2), 'tuple')", '[1, 2, 3, 4] 4', '1'])
  t.is(d.getitem(pickle.tuple(5, 6)), 'py tuple')
  t.is(d.getitem(Buffer.from('pb')), 'py bytes')
  t.is(d.getitem(7), 'py int')
  t.deepEqual(l.toArray(), [1, 2, 3, 4])
  t.is(ns.b, 'py')
})

withPython("60 awaitable calls at once to a Python manager all answer: the connections they open do not overflow Python's listen backlog of 16 (its kernel dropped some silently, and they waited for a handshake forever)", async (t) => {
  const py = startPython(t, good, PY_COUNTING_MANAGER)
  const m = new AioManager({ address: ['127.0.0.1', Number(await py.line(0))], authkey: 'secret', serializer: 'pickle' })
  m.connect()
  t.teardown(() => m.shutdown())
  const q = m.Queue<number>()
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<string>((r) => (timer = setTimeout(() => r('still waiting after 30 s'), LONG)))
  const all = Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? q.coro_put(i) : q.coro_qsize()))).then(() => 'answered')
  t.is(await Promise.race([all, bound]), 'answered')
  clearTimeout(timer)
  t.is(q.qsize(), 30)
})

withPython('a connection whose handshake never begins (one the kernel dropped on a full backlog) is opened again after 5 s, on the blocking and the awaitable path', async (t) => {
  // A SyncManager whose accepting loop keeps its 2nd and 5th connections without a word, as a
  // server that lost them would: the create() and the coro_qsize() below.
  const py = startPython(t, good, `
import threading
from multiprocessing.managers import SyncManager
s = SyncManager(('127.0.0.1', 0), authkey=b'secret').get_server()
print(s.address[1], flush=True)
s.stop_event = threading.Event()  # as serve_forever() sets it up
kept = []
n = 0
while True:
    c = s.listener.accept()
    n += 1
    if n in (2, 5):
        kept.append(c)
        continue
    threading.Thread(target=s.handle_request, args=(c,), daemon=True).start()
`)
  const m = new AioManager({ address: ['127.0.0.1', Number(await py.line(0))], authkey: 'secret', serializer: 'pickle' })
  m.connect()
  t.teardown(() => m.shutdown())
  let start = performance.now()
  const q = m.Queue<number>()
  t.true(performance.now() - start >= 4900, `created after ${performance.now() - start} ms`)
  q.put(1)
  start = performance.now()
  t.is(await q.coro_qsize(), 1)
  t.true(performance.now() - start >= 4900, `answered after ${performance.now() - start} ms`)
})

withPython("a Python client's incref and decref reach only objects made for Python clients: decrefs of every id did not free a Node client's queue", async (t) => {
  const { address, m } = nodeManager(t)
  const q = m.Queue<string>()
  q.put('node item')
  const r = await python(good, `
from multiprocessing.connection import Client
from multiprocessing.managers import SyncManager, dispatch
def server(method, ident):
    c = Client(${JSON.stringify(address)}, authkey=b'secret')
    try:
        return dispatch(c, None, method, (ident,))
    except Exception as e:
        return type(e).__name__
    finally:
        c.close()
print([server('decref', ident) for ident in range(1, 10) for _ in range(3)].count(None), server('incref', 1))
# A Python client's own objects work as before.
m = SyncManager(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
pq = m.Queue(); pq.put(1)
print(pq.qsize())
`)
  t.is(r.code, 0, r.err)
  t.deepEqual(r.out.trim().split('\n'), ['27 RemoteError', '1'])
  // Past the server's drop grace: a dropped object would be gone by now.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.is(q.get(false), 'node item')
})

withPython('Python clients SIGKILLed inside get() and inside `with lock:`, 10 times each: their waits take nothing, the lock is free, the server keeps no fd of theirs', async (t) => {
  const { address, m } = nodeManager(t)
  const q = m.Queue<string>()
  const lock = m.Lock()
  m.publish('get_q', q)
  m.publish('get_lock', lock)
  const fds = (): number => readdirSync(`/proc/${m.pid}/fd`).length
  const what = (): string => readdirSync(`/proc/${m.pid}/fd`).map((f) => { try { return readlinkSync(`/proc/${m.pid}/fd/${f}`) } catch { return '?' } }).join(' ')
  const connect = `
import time
from multiprocessing.managers import SyncManager, AcquirerProxy
class M(SyncManager): pass
M.register('get_q'); M.register('get_lock', proxytype=AcquirerProxy)
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
q, lock = m.get_q(), m.get_lock()
`
  // This client's own connections (blocking and awaitable) are open before the count.
  t.true(await lock.coro_acquire())
  lock.release()
  const before = fds()
  const whatBefore = what()
  for (let i = 0; i < 10; i++) {
    for (const body of ["print('waiting', flush=True); q.get()", "with lock:\n    print('waiting', flush=True); time.sleep(60)"]) {
      const py = startPython(t, good, connect + body)
      t.is(await py.line(0), 'waiting')
      py.child.kill('SIGKILL')
      await py.closed
    }
  }
  // The server learns of each death from its socket: the lock comes back as soon as it has.
  t.true(await lock.coro_acquire(true, LONG))
  lock.release()
  q.put('for the living')
  t.is(q.get(true, LONG), 'for the living')
  // A leak per killed client would be 20 fds; a few may be the server's own, opened meanwhile.
  const end = Date.now() + LONG
  while (fds() > before && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  t.true(fds() - before < 10, `${fds() - before} fds more on the server: ${what()} (before: ${whatBefore})`)
})

withPython("a registered Node class's method called from Python with keywords is a TypeError (the keywords were dropped: add(n=5) added undefined)", async (t) => {
  const { address } = nodeManager(t, { Counter: 'Counter' })
  const r = await python(good, `
from multiprocessing.managers import SyncManager
class M(SyncManager): pass
M.register('Counter')
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
c = m.Counter()
c.add(5)
try:
    c.add(n=5)
except TypeError as e:
    print(e)
print(c.total())
`)
  t.is(r.code, 0, r.err)
  t.deepEqual(r.out.trim().split('\n'), ['add() of a Node object takes positional arguments only, not n=', '5'])
})

withPython('a timeout of Infinity waits forever on a Python manager (Python raised OverflowError for inf) and from a Python client on a Node manager', async (t) => {
  const py = startPython(t, good, PY_COUNTING_MANAGER)
  const m = new AioManager({ address: ['127.0.0.1', Number(await py.line(0))], authkey: 'secret', serializer: 'pickle' })
  m.connect()
  t.teardown(() => m.shutdown())
  const l = m.Lock()
  t.true(l.acquire(true, Infinity))
  setTimeout(() => l.release(), 50)
  t.true(await l.coro_acquire(true, Infinity))
  const e = m.Event()
  setTimeout(() => e.set(), 50)
  t.true(await e.coro_wait(Infinity))
  const q = m.Queue<number>()
  q.put(1)
  t.is(q.get(true, Infinity), 1)
  // The other way: Python's float('inf') seconds on a Node manager's objects.
  const { address } = nodeManager(t)
  const r = await python(good, `
from multiprocessing.managers import SyncManager
m = SyncManager(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
inf = float('inf')
q, l, e = m.Queue(), m.Lock(), m.Event()
q.put(1, True, inf); e.set()
print(q.get(True, inf), l.acquire(True, inf), e.wait(inf))
`)
  t.is(r.code, 0, r.err)
  t.is(r.out.trim(), '1 True True')
})

withPython('a Python manager SIGKILLed under a blocking get(), an awaited coro_get() and a sliced one (with a signal): each fails at once with EOFError or OSError, and so do later calls, awaited ones included', async (t) => {
  // A queue that says when a get() begins, and with which timeout.
  const { py, m } = await pythonServing(t, `
import queue, threading
from multiprocessing.managers import BaseManager
class Q(queue.Queue):
    def get(self, block=True, timeout=None):
        print('get', timeout, flush=True)
        return super().get(block, timeout)
q = Q()
class M(BaseManager): pass
M.register('get_q', callable=lambda: q)
`)
  const q = m.create('get_q') as unknown as AioQueueProxy<number>
  const lost = (e: unknown): boolean => e instanceof EOFError || e instanceof OSError
  const awaited = q.coro_get().then(() => 'answered', (e) => (lost(e) ? 'lost' : String(e)))
  const sliced = q.coro_get(true, null, { signal: new AbortController().signal }).then(() => 'answered', (e) => (lost(e) ? 'lost' : String(e)))
  const end = Date.now() + LONG
  while (!(py.lines.includes('get None') && py.lines.includes('get 0.1')) && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  // Both wait in Python now. The blocking get holds this thread: another process kills the manager.
  spawn('sh', ['-c', `sleep 0.5; kill -9 ${py.child.pid}`], { stdio: 'ignore' })
  const start = performance.now()
  const blocking = t.throws(() => q.get(true, LONG))
  t.true(lost(blocking), String(blocking))
  t.true(performance.now() - start < LONG / 2)
  t.deepEqual(await Promise.all([awaited, sliced]), ['lost', 'lost'])
  t.true(lost(t.throws(() => q.qsize())))
  t.true(lost(await t.throwsAsync(q.coro_qsize())))
})

withPython("an RLock's and a Condition's owner on a Python manager is the proxy's thread in both styles, as in Python: coro_acquire then release(), acquire() then coro_release(), awaited calls at once, a coro_wait woken by another proxy's notify", async (t) => {
  const { m } = await pythonServing(t, `
import threading
from multiprocessing.managers import SyncManager, ConditionProxy
cond = threading.Condition()
class M(SyncManager): pass
M.register('get_cond', callable=lambda: cond, proxytype=ConditionProxy)
`)
  const rl = m.RLock()
  // Mixed styles, one owner: each of these raised RuntimeError when a style had connections of its own.
  t.true(await rl.coro_acquire())
  t.true(rl.acquire())
  rl.release()
  await rl.coro_release()
  t.true(rl.acquire())
  await rl.coro_release()
  t.deepEqual(await Promise.all([rl.coro_acquire(), rl.coro_acquire(), rl.coro_acquire(true, null, { signal: new AbortController().signal })]), [true, true, true])
  await Promise.all([rl.coro_release(), rl.coro_release(), rl.coro_release()])
  t.throws(() => rl.release(), { instanceOf: RuntimeError })
  // Two proxies of one Condition are two owners, as two proxies are in Python.
  const waiter = m.create('get_cond') as unknown as AioCondition
  const notifier = m.create('get_cond') as unknown as AioCondition
  for (const signal of [undefined, new AbortController().signal]) {
    t.true(await waiter.coro_acquire(true, null, signal && { signal }))
    // Without a signal: under one, a wait goes in slices, and a notify that meets a slice's end is
    // spent on it, as on any Python wait that times out (README, Not there yet).
    const woken = waiter.coro_wait(LONG)
    // Once the wait is sent (its microtasks ran), a blocking call of the same proxy is refused:
    // Python would serve it only after the wait, and this thread would wait for ever.
    await new Promise((r) => setImmediate(r))
    t.throws(() => waiter.notify(), { instanceOf: RuntimeError, message: /in flight/ })
    t.true(await notifier.coro_acquire(true, LONG))
    notifier.notify()
    notifier.release()
    t.true(await woken)
    waiter.release()
  }
  t.true(notifier.acquire(false))
  await notifier.coro_release()
})

withPython('a connection a Python manager resets (RST) under a blocking call and an awaited one fails each with OSError (ECONNRESET kept as its cause), not a raw system error; later calls go on new connections', async (t) => {
  // reset() closes the connection it is called on with SO_LINGER 0: the kernel sends RST.
  const { m } = await pythonServing(t, `
import os, socket, struct, sys
from multiprocessing.managers import BaseManager
class R:
    def reset(self):
        conn = sys._getframe(1).f_locals['conn']
        s = socket.socket(fileno=os.dup(conn.fileno()))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
        conn.close()
    def ok(self):
        return 'ok'
r = R()
class M(BaseManager): pass
M.register('get_r', callable=lambda: r)
`)
  const r = m.create('get_r') as unknown as { reset(): void; coro_reset(): Promise<void>; ok(): string; coro_ok(): Promise<string> }
  const reset = (e: unknown): boolean => e instanceof OSError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET'
  const blocking = t.throws(() => r.reset())
  t.true(reset(blocking) || blocking instanceof EOFError, `${String(blocking)} (${(blocking?.cause as Error | undefined)?.message})`)
  t.true(blocking instanceof OSError || blocking instanceof EOFError)
  const awaited = await t.throwsAsync(r.coro_reset())
  t.true(awaited instanceof OSError || awaited instanceof EOFError, String(awaited))
  t.is(r.ok(), 'ok')
  t.is(await r.coro_ok(), 'ok')
})

withPython("a Barrier's coro_wait on a Python manager with a signal waits as long as it takes (slices of 100 ms broke the barrier, as Python breaks one whose wait times out)", async (t) => {
  const py = startPython(t, good, PY_COUNTING_MANAGER)
  const m = new AioManager({ address: ['127.0.0.1', Number(await py.line(0))], authkey: 'secret', serializer: 'pickle' })
  m.connect()
  t.teardown(() => m.shutdown())
  const b = m.Barrier(2)
  const first = b.coro_wait(null, { signal: new AbortController().signal })
  // Past a few slices, then the second party comes.
  await new Promise((r) => setTimeout(r, 350))
  const second = b.wait(LONG)
  t.deepEqual([await first, second].sort(), [0, 1])
  t.false(b.broken)
})

withPython('a process whose proxies of a frozen Python manager are collected ends after one handshake bound (30 s), not one per proxy (a decref waited for a handshake forever)', async (t) => {
  const py = startPython(t, good, PY_COUNTING_MANAGER)
  const port = Number(await py.line(0))
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { AioManager } from ${ENTRY}
    import { setFlagsFromString } from 'node:v8'
    import { runInNewContext } from 'node:vm'
    setFlagsFromString('--expose-gc')
    const m = new AioManager({ address: ['127.0.0.1', ${port}], authkey: 'secret', serializer: 'pickle' })
    m.connect()
    for (let i = 0; i < 10; i++) m.Queue()
    console.log('made')
    // Collected only once the manager is frozen: the test says when, on stdin.
    process.stdin.once('data', () => { runInNewContext('gc')(); process.stdin.destroy(); console.log('collected') })
  `])
  t.teardown(() => child.kill('SIGKILL'))
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const closed = new Promise<number | null>((r) => child.on('close', r))
  const saw = (word: string) =>
    new Promise<void>((r) => {
      const look = () => out.includes(word) && r()
      child.stdout.on('data', (d) => ((out += d), look()))
      look()
    })
  await saw('made')
  // Frozen: its kernel still accepts connections, its handshakes never begin.
  py.child.kill('SIGSTOP')
  t.teardown(() => py.child.kill('SIGCONT'))
  child.stdin.end('go\n')
  await saw('collected')
  const start = Date.now()
  const code = await Promise.race([closed, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 3 * LONG))])
  t.not(code, 'waiting', 'the process was still waiting to send its decrefs')
  t.is(code, 0, err)
  t.true(Date.now() - start >= 25_000, `ended after ${Date.now() - start} ms: the decref was not tried`)
})

withPython('the classic stress test across languages: 20 Python processes × 50 increments of a Node Namespace under a Node Lock, at once, total exactly 1,000', async (t) => {
  const { address, m } = nodeManager(t)
  const lock = m.Lock()
  const ns = m.Namespace({ n: 0 }) as unknown as { n: number }
  m.publish('get_lock', lock)
  m.publish('get_ns', ns)
  const K = 20
  const J = 50
  const runs = Array.from({ length: K }, () =>
    python(good, `
from multiprocessing.managers import SyncManager, AcquirerProxy, NamespaceProxy
class M(SyncManager): pass
M.register('get_lock', proxytype=AcquirerProxy); M.register('get_ns', proxytype=NamespaceProxy)
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
lock, ns = m.get_lock(), m.get_ns()
for _ in range(${J}):
    with lock:
        ns.n = ns.n + 1
`),
  )
  for (const r of await Promise.all(runs)) t.is(r.code, 0, r.err)
  t.is(ns.n, K * J)
})

withPython("a Python client's get of a queue item holding a Node client's dict gets a copy of its values, and nothing is lost (it failed to pickle the dict and the item was gone)", async (t) => {
  const { address, m } = nodeManager(t)
  const q = m.Queue()
  const d = m.dict<string, number>()
  d.set('k', 7)
  q.put({ d, n: 1 })
  q.put('plain')
  m.publish('the_queue', q)
  const r = await python(good, `
from multiprocessing.managers import SyncManager
class M(SyncManager): pass
M.register('the_queue')
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
q = m.the_queue()
item = q.get(timeout=10)
print(sorted(item.keys()), dict(item['d']), item['n'])
print(q.get(timeout=10))
`)
  t.is(r.code, 0, r.err)
  t.deepEqual(r.out.trim().split('\n'), ["['d', 'n'] {'k': 7} 1", 'plain'])
})

withPython("a Python client reading a Node client's list or dict kept in a dict, or a Namespace's attribute, gets a copy of its values (it got RemoteError: a HostedList object cannot be pickled)", async (t) => {
  const { address, m } = nodeManager(t)
  const d = m.dict<string, unknown>()
  const ns = m.Namespace()
  d.set('inner_list', m.list([1, 2]))
  const inner = m.dict<string, number>()
  inner.set('k', 3)
  d.set('inner_dict', inner)
  ;(ns as unknown as { sub: unknown }).sub = m.list([4])
  m.publish('the_dict', d)
  m.publish('the_ns', ns)
  const r = await python(good, `
from multiprocessing.managers import SyncManager, NamespaceProxy
class M(SyncManager): pass
M.register('the_dict')
M.register('the_ns', proxytype=NamespaceProxy)
m = M(${JSON.stringify(address)}, authkey=b'secret'); m.connect()
d = m.the_dict()
print(d.get('inner_list'), d.get('inner_dict'), m.the_ns().sub)
`)
  t.is(r.code, 0, r.err)
  t.is(r.out.trim(), "[1, 2] {'k': 3} [4]")
  // The Node side still has them as proxies of the same objects.
  t.deepEqual((d.get('inner_list') as { toArray(): unknown[] }).toArray(), [1, 2])
})
