// One serializer contract for every path a value takes to another thread: queue items, pipe
// messages and process arguments hold the same values, find shared objects at any depth of
// arrays, objects, Maps and Sets, and refuse the same values with the same message.
import test, { type ExecutionContext } from 'ava'
import { AioLock, AioManager, AioPipe, AioProcess, AioQueue } from '../generated/index.generated.js'
import { decode, decodeFromPeer, encode, encoded } from '../runtime/ipc/serialize.js'
import { LONG, joined, start } from './helpers.js'

type Path = 'queue' | 'pipe' | 'args'
const PATHS: readonly Path[] = ['queue', 'pipe', 'args']

/**
 * Sends `value` along `path` to a child running `target(path, queue | connection | value)`, and
 * waits until the child has ended well.
 */
async function deliver(t: ExecutionContext, path: Path, value: unknown, target: (how: Path, x: any) => void): Promise<void> {
  if (path === 'queue') {
    const q = new AioQueue<unknown>()
    q.put(value)
    joined(t, start(t, { target, args: [path, q] }))
  } else if (path === 'pipe') {
    const [here, there] = AioPipe()
    const p = start(t, { target, args: [path, there] })
    await here.coro_send(value)
    joined(t, p)
  } else {
    joined(t, start(t, { target, args: [path, value] }))
  }
}

/** Four locks, held here, each inside a different container. */
function nestedLocks(): { locks: AioLock[]; value: unknown } {
  const locks = [new AioLock(), new AioLock(), new AioLock(), new AioLock()]
  for (const l of locks) l.acquire()
  return { locks, value: { map: new Map([['lock', locks[0]]]), set: new Set([locks[1]]), array: [locks[2]], object: { lock: locks[3] } } }
}

for (const path of PATHS) {
  test(`a lock inside a Map, a Set, an array and an object arrives working through ${path}`, async (t) => {
    const { locks, value } = nestedLocks()
    // The child finds each lock held (by this thread) and releases it: a copy, or the `{}` a lock
    // used to become inside a Map, cannot do either.
    const target = (how: Path, x: any) => {
      const v = how === 'queue' ? x.get(true, 30_000) : how === 'pipe' ? x.recv() : x
      for (const lock of [v.map.get('lock'), [...v.set][0], v.array[0], v.object.lock]) {
        if (lock.acquire(false)) throw new Error('the lock that arrived is not the one sent')
        lock.release()
      }
    }
    await deliver(t, path, value, target)
    t.deepEqual(
      locks.map((l) => l.acquire(false)),
      [true, true, true, true],
      'each lock was released by the child',
    )
  })
}

for (const path of PATHS) {
  test(`a SharedArrayBuffer and a view over one arrive as the same memory through ${path}, not as copies`, async (t) => {
    const sab = new SharedArrayBuffer(8)
    const value = new Map<string, unknown>([['buffer', sab], ['view', new Int32Array(sab, 4, 1)]])
    const target = (how: Path, x: any) => {
      const v = how === 'queue' ? x.get(true, 30_000) : how === 'pipe' ? x.recv() : x
      Atomics.store(new Int32Array(v.get('buffer')), 0, 7)
      Atomics.store(v.get('view'), 0, 42)
    }
    await deliver(t, path, value, target)
    t.deepEqual([...new Int32Array(sab)], [7, 42])
  })
}

test('shared memory in the args of a spawned process is refused with its path: the child could not see it', (t) => {
  const p = new AioProcess({ target: (_: unknown) => {}, args: [[new Uint8Array(new SharedArrayBuffer(4))]], startMethod: 'spawn' })
  t.throws(() => p.start(), { instanceOf: TypeError, message: /^args\[0\]\[0\] is an object \(Uint8Array\) over this process's shared memory/ })
  t.false(p.isAlive())
})

/** Sends `value` along `path` and returns the TypeError it was refused with, and its root name. */
function refusal(t: ExecutionContext, path: Path, value: unknown): { root: string; message: string } {
  if (path === 'queue') {
    const q = new AioQueue<unknown>()
    const error = t.throws(() => q.put(value), { instanceOf: TypeError }) as Error
    t.true(q.empty(), 'the refused item is not in the queue')
    return { root: 'item', message: error.message }
  }
  if (path === 'pipe') {
    const [here, there] = AioPipe()
    const error = t.throws(() => here.send(value), { instanceOf: TypeError }) as Error
    t.false(there.poll(0), 'nothing was sent')
    return { root: 'obj', message: error.message }
  }
  const p = new AioProcess({ target: (_: unknown) => {}, args: [value] })
  const error = t.throws(() => p.start(), { instanceOf: TypeError }) as Error
  t.false(p.isAlive())
  return { root: 'args[0]', message: error.message }
}

const refused: [name: string, value: () => unknown, rest: RegExp][] = [
  ['a function nested in a Map', () => ({ m: new Map([['k', () => 1]]) }), /^\.m\.get\(k\) is a function, which cannot be sent to another thread/],
  ['a Symbol in a Set', () => [new Set([1, Symbol('s')])], /^\[0\] item #1 is symbol Symbol\(s\), which cannot be sent to another thread$/],
  ['a function as a Map key', () => new Map<unknown, number>([[1, 1], [() => 1, 2]]), /^ key #1 is a function/],
  ['a WeakMap in an object in a Map', () => new Map([['k', { w: new WeakMap() }]]), /^\.get\(k\)\.w \(an object \(WeakMap\)\) cannot be sent to another thread: /],
]

for (const [name, value, rest] of refused) {
  test(`${name} is refused with its path, in the same words, through a queue, a pipe and process args`, (t) => {
    const messages = PATHS.map((path) => {
      const { root, message } = refusal(t, path, value())
      t.true(message.startsWith(root), message)
      t.regex(message.slice(root.length), rest)
      return message.slice(root.length)
    })
    t.deepEqual(messages, [messages[0], messages[0], messages[0]])
  })
}

test('an own key named __proto__ (a JSON.parse\'d object has one) arrives as a key on every path, not as the prototype', async (t) => {
  const value = JSON.parse('{"__proto__": {"a": 1}, "b": 2, "inner": [{"__proto__": null}]}')
  const check = (got: any): void => {
    t.deepEqual(Object.keys(got), ['__proto__', 'b', 'inner'])
    t.is(Object.getPrototypeOf(got), Object.prototype)
    t.deepEqual(Object.getOwnPropertyDescriptor(got, '__proto__')?.value, { a: 1 })
    t.is(got.a, undefined)
    t.true(Object.hasOwn(got.inner[0], '__proto__'))
    t.is(Object.getPrototypeOf(got.inner[0]), Object.prototype)
  }
  check(decode(Buffer.from(encoded().subarray(0, encode(value)))))
  check(decodeFromPeer(Buffer.from(encoded().subarray(0, encode(value)))))
  for (const path of PATHS) {
    await deliver(t, path, value, (how, x) => {
      const got = how === 'queue' ? x.get() : how === 'pipe' ? x.recv() : x
      const ok = Object.keys(got).join() === '__proto__,b,inner' && Object.getPrototypeOf(got) === Object.prototype && got.a === undefined && Object.hasOwn(got.inner[0], '__proto__')
      if (!ok) throw new Error(`through ${how}: ${JSON.stringify(Object.keys(got))}, a = ${got.a}`)
    })
  }
  const m = new AioManager()
  m.start()
  try {
    const q = m.Queue()
    q.put(value)
    check(q.get(true, LONG))
    const d = m.dict()
    d.set('k', value)
    check(d.get('k'))
    check(await d.coro_get('k'))
  } finally {
    m.shutdown()
  }
})

test('the scratch buffer that one large value grew is let go at the next value (a thread that once sent 1 GB held 2 GB for ever, and past 2 GiB wrote every later string empty)', (t) => {
  const n = encode([new Uint8Array(100e6), 'héllo wörld, a string past the short ones'])
  t.true(encoded().length >= n && n > 100e6)
  t.deepEqual((decode(Buffer.from(encoded().subarray(0, n))) as unknown[])[1], 'héllo wörld, a string past the short ones')
  const m = encode('après')
  t.true(encoded().length < 1024 * 1024, `${encoded().length} bytes kept`)
  t.is(decode(Buffer.from(encoded().subarray(0, m))), 'après')
})

test('Maps and Sets keep their order, their key types and what they hold, in the compact form', (t) => {
  const when = new Date(0)
  const value = new Map<unknown, unknown>([
    [1, 'int key'],
    ['1', 'string key'],
    [{ k: 1 }, new Set([1, 'a', null, undefined, 2n, [3], new Map([[when, /re/g]])])],
    [null, new Map()],
    [undefined, new Set()],
  ])
  const n = encode(value)
  const bytes = Buffer.from(encoded().subarray(0, n))
  t.deepEqual(decode(bytes), value)
  t.deepEqual([...(decode(bytes) as Map<unknown, unknown>).keys()], [1, '1', { k: 1 }, null, undefined])
  // A Map subclass travels as a Map, as structured clone sends it.
  class Registry extends Map<string, number> {}
  const sub = decode(Buffer.from(encoded().subarray(0, encode(new Registry([['a', 1]]))))) as Map<string, number>
  t.is(Object.getPrototypeOf(sub), Map.prototype)
  t.deepEqual([...sub], [['a', 1]])
})

test('fuzz: 20,000 random or mutated messages from a peer decode or fail with a ValueError, never another error or a wait', (t) => {
  const samples: unknown[] = [1, 'abc', [1, [2, 'x']], { a: 1, b: [true, null] }, new Map([[1, 'a']]), new Set([1, 2]), 12345678901234567890n, new Uint8Array([1, 2, 3]), Buffer.from('hi'), new Date(0), -0.5]
  let seed = 7
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n)
  const other: string[] = []
  for (let i = 0; i < 20_000; i++) {
    let bytes: Buffer
    if (i % 2) bytes = Buffer.from(Array.from({ length: 1 + rand(64) }, () => rand(256)))
    else {
      const n = encode(samples[i % samples.length])
      bytes = Buffer.from(encoded().subarray(0, n))
      for (let k = 0; k <= rand(3); k++) bytes[rand(bytes.length)] ^= 1 << rand(8)
    }
    try {
      decodeFromPeer(bytes)
    } catch (error) {
      if (!(error instanceof Error) || error.name !== 'ValueError') other.push(`${bytes.toString('hex')}: ${String(error)}`)
    }
  }
  t.deepEqual(other.slice(0, 5), [], `${other.length} messages failed with another error`)
})

// A pool's first task crosses by a port's structured clone when crossesAlike says the clone is what
// the codec gives (pool/first-offer.ts): checked on values built at random from every kind the
// codec knows, and on the kinds it must refuse.
test('crossesAlike: what it lets through, the structured clone carries exactly as the codec does', async (t) => {
  const { crossesAlike } = await import('../runtime/pool/first-offer.js')
  const { isDeepStrictEqual } = await import('node:util')
  let seed = 7
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
  const leaves = [0, -0, 1.5, -7, 2 ** 40, NaN, Infinity, 'x', 'héllo', '\ud800', '', true, false, null, undefined, 10n ** 30n, Buffer.from('b'), new Uint8Array([1]), new Date(1), new Map([[1, 2]]), new Set(['s'])]
  const make = (depth: number): unknown => {
    const r = random()
    if (depth > 3 || r < 0.4) return leaves[Math.floor(random() * leaves.length)]
    if (r < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => make(depth + 1))
    if (r < 0.7) return Object.assign([make(depth + 1)], { extra: 1 })
    if (r < 0.75) return [make(depth + 1), , make(depth + 1)] // eslint-disable-line no-sparse-arrays
    const o: Record<string, unknown> = random() < 0.1 ? Object.create(null) : {}
    for (let i = Math.floor(random() * 4); i > 0; i--) o[random() < 0.05 ? '\udc00' : `k${i}`] = make(depth + 1)
    return o
  }
  let through = 0
  for (let i = 0; i < 2000; i++) {
    const v = make(0)
    if (!crossesAlike(v)) continue
    through++
    const n = encode(v)
    t.true(isDeepStrictEqual(structuredClone(v), decode(encoded().subarray(0, n))), `value ${i}`)
  }
  // Enough of them go the quick way for the check to mean something.
  t.true(through > 300, `${through}`)
  for (const v of [{ a: [1, 'x', null, { b: true }] }, [1, 2, 3], 'text', 42, -0, [{ a: 1 }, { a: 1 }]]) t.true(crossesAlike(v))
  const shared = { k: 1 }
  const sparseWithKey = Object.assign([1, , 3], { x: 5 }) // eslint-disable-line no-sparse-arrays
  const notAlike = ['\ud800', [1, , 2], sparseWithKey, Buffer.from('x'), new Map(), Object.assign([1], { x: 1 }), () => 1, Symbol('s'), { [Symbol('k')]: 1 }, new (class A {})(),
    { x: shared, y: shared }, [shared, shared], { get a() { return 1 } }, new Proxy({ a: 1 }, {}), { a: new Proxy([], {}) }] // eslint-disable-line no-sparse-arrays
  notAlike.forEach((v, i) => t.false(crossesAlike(v), `value ${i}`))
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  t.false(crossesAlike(cycle))
  const deep: unknown[] = []
  let at = deep
  for (let i = 0; i < 20_000; i++) at.push((at = []))
  t.false(crossesAlike(deep), 'past its budget a value is not looked through')
})
