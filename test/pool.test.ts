// AioPool beyond the generated conformance cases: faults (a worker that exits, crashes or runs out
// of memory mid-task), worker recycling, aborted coro_ calls, shared objects in arguments, and the
// pool's life inside processes.
import test, { type ExecutionContext } from 'ava'
import { AioEvent, AioPool, AioProcess, AioQueue, AioValue, MaybeEncodingError, PoolTerminatedError, ProcessError, WorkerLostError, type PoolOptions } from '../generated/index.generated.js'
import { ENTRY, LONG, STYLES, call, joined, runNode, runNodeWith, start, tempDir } from './helpers.js'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const TARGETS = new URL('./targets.js', import.meta.url).href

/** A pool the test always terminates. */
function pool(t: ExecutionContext, options: PoolOptions): AioPool {
  const p = new AioPool(options)
  t.teardown(() => {
    p.terminate()
    p.join()
  })
  return p
}

const fates = [
  ['process.exit(7)', () => { process.exit(7) }, /exitcode 7/],
  ['an uncaught error in a callback', () => new Promise(() => { setTimeout(() => { throw new Error('expected in a test: crash') }) }), /crashed or ran out of memory/],
  ['running out of memory', () => { const hog: unknown[] = []; for (;;) hog.push(new Array(100_000).fill(1)) }, /crashed or ran out of memory/],
] as const

for (const style of STYLES) {
  for (const [how, die, message] of fates) {
    test(`a worker dying mid-task (${how}) fails exactly that task; every other task completes (${style})`, async (t) => {
      const p = pool(t, { processes: 2, resourceLimits: { maxOldGenerationSizeMb: 32 } })
      const tasks = Array.from({ length: 40 }, (_, i) => i)
      const results = tasks.map((i) => (i === 13 ? p.applyAsync(die) : p.applyAsync((x: number) => x * 2, [i])))
      const settled = await Promise.all(results.map(async (r) => {
        try {
          return { ok: true, value: await call(style, r, 'get', LONG) }
        } catch (error) {
          return { ok: false, value: error }
        }
      }))
      settled.forEach((s, i) => {
        if (i === 13) {
          t.false(s.ok)
          t.true(s.value instanceof WorkerLostError, String(s.value))
          t.regex(String(s.value), message)
        } else t.deepEqual(s, { ok: true, value: i * 2 }, `task ${i}`)
      })
      // The pool is whole again and serves new work.
      t.deepEqual(await call(style, p, 'map', (x: number) => x + 1, [1, 2, 3, 4], 1), [2, 3, 4, 5])
      t.is(p.pids.length, 2)
    })
  }

  test(`maxtasksperchild recycles workers: new pids, all results right (${style})`, async (t) => {
    const p = pool(t, { processes: 2, maxtasksperchild: 1 })
    const pids = await call<number[]>(style, p, 'map', { module: TARGETS, name: 'workerId' }, [1, 2, 3, 4, 5, 6], 1)
    t.is(new Set(pids).size, 6, `pids ${pids}`)
    const p10 = pool(t, { processes: 2, maxtasksperchild: 10 })
    const first = [...p10.pids]
    t.deepEqual(await call(style, p10, 'map', (x: number) => x * x, Array.from({ length: 100 }, (_, i) => i), 1), Array.from({ length: 100 }, (_, i) => i * i))
    t.true(p10.pids.every((pid) => pid !== null && !first.includes(pid)), `${first} then ${p10.pids}`)
  })

  test(`POOL-43 close while recycling workers still joins, with every result right (${style})`, async (t) => {
    const p = pool(t, { processes: 2, maxtasksperchild: 1 })
    const r = p.mapAsync((x: number) => x + 100, Array.from({ length: 8 }, (_, i) => i), 1)
    p.close()
    await call(style, p, 'join')
    t.deepEqual(r.get(0), Array.from({ length: 8 }, (_, i) => i + 100))
  })

  test(`shared primitives and queues in task arguments arrive working (${style})`, async (t) => {
    const p = pool(t, { processes: 2 })
    const q = new AioQueue<string>()
    const counter = new AioValue('i', 0)
    await call(style, p, 'starmap', (q: AioQueue<string>, v: AioValue, i: number) => {
      v.getLock().acquire()
      v.value = (v.value as number) + 1
      v.getLock().release()
      q.put(`task ${i}`)
    }, Array.from({ length: 10 }, (_, i) => [q, counter, i]), 1)
    t.is(counter.value, 10)
    const got = Array.from({ length: 10 }, () => q.get(true, LONG)).sort()
    t.deepEqual(got, Array.from({ length: 10 }, (_, i) => `task ${i}`).sort())
  })

  test(`POOL-36 a result that cannot be sent fails with MaybeEncodingError; no worker is lost (${style})`, async (t) => {
    const p = pool(t, { processes: 2 })
    const before = [...p.pids]
    for (let i = 0; i < 20; i++) {
      const error = await t.throwsAsync(async () => call(style, p, 'apply', () => () => 'a function'), { instanceOf: MaybeEncodingError })
      t.regex(error!.message, /^Error sending result: '.*'\. Reason: '.*'$/)
    }
    t.deepEqual(p.pids, before)
  })
}

test('a worker thread runs its first task without loading node:crypto, node:net or node:child_process', async (t) => {
  // A first pool's start waits for its threads to load what they import: node:crypto alone took a
  // fresh thread ~2 ms here, and a change that made every thread's first module import it passed
  // every other test.
  const p = pool(t, { processes: 1 })
  t.deepEqual(await p.coro_apply(() => (process as unknown as { moduleLoadList: string[] }).moduleLoadList.filter((m) => /^NativeModule (crypto|net|child_process)$/.test(m)), []), [])
})

test('an aborted coro_map rejects at once; its queued tasks never run and no stale results remain', async (t) => {
  const p = pool(t, { processes: 2 })
  const gate = new AioEvent()
  const ran = new AioValue('i', 0)
  const controller = new AbortController()
  const task = (ev: AioEvent, v: AioValue) => {
    ev.wait()
    v.getLock().acquire()
    v.value = (v.value as number) + 1
    v.getLock().release()
    return 'late'
  }
  const pending = p.coro_starmap(task, Array.from({ length: 2000 }, () => [gate, ran]), 1, { signal: controller.signal })
  controller.abort(new Error('expected in a test: abort'))
  await t.throwsAsync(pending, { message: /abort/ })
  gate.set()
  // The pool goes on with other work, and nothing of the aborted map is delivered to it.
  t.deepEqual(await p.coro_map((x: number) => x * 3, [1, 2, 3], 1), [3, 6, 9])
  p.close()
  await p.coro_join()
  t.is(p.pendingTasks, 0)
  // Only tasks already sent to a worker ran: far fewer than 2000.
  t.true((ran.value as number) < 2000, `${ran.value} of 2000 aborted tasks ran`)
})

test('imap results are an async iterable; an error ends a chunked imap, as in Python', async (t) => {
  const p = pool(t, { processes: 2 })
  const got: number[] = []
  for await (const x of p.imap((x: number) => x * 2, [1, 2, 3, 4, 5], 2)) got.push(x)
  t.deepEqual(got, [2, 4, 6, 8, 10])
  const it = p.imap((x: number) => { if (x === 3) throw new RangeError('three'); return x }, [1, 2, 3, 4, 5, 6], 2)
  const seen: unknown[] = []
  await t.throwsAsync(async () => { for await (const x of it) seen.push(x) }, { instanceOf: RangeError })
  t.deepEqual(seen, [1, 2])
  t.deepEqual(await it.coro_next(), { value: undefined, done: true })
})

test('terminate fails results that are awaited, instead of leaving them pending', async (t) => {
  const p = pool(t, { processes: 1 })
  const started = new AioEvent()
  const never = new AioEvent()
  const waiting = p.coro_apply((s: AioEvent, n: AioEvent) => { s.set(); n.wait() }, [started, never])
  const queued = p.coro_map((x: number) => x, [1, 2, 3], 1)
  const outcomes = Promise.allSettled([waiting, queued])
  t.true(await started.coro_wait(LONG))
  p.terminate()
  for (const outcome of await outcomes) {
    t.is(outcome.status, 'rejected')
    t.true((outcome as PromiseRejectedResult).reason instanceof PoolTerminatedError)
  }
  await p.coro_join()
})

test('await using terminates the pool and waits for its workers', async (t) => {
  let escaped: AioPool | undefined
  {
    await using p = new AioPool({ processes: 1 })
    escaped = p
    t.is(await p.coro_apply((x: number) => x + 1, [1]), 2)
  }
  t.regex(String(escaped), /state=TERMINATE/)
  t.deepEqual(escaped.pids, [])
})

test('POOL-50 a pool works inside a child process', (t) => {
  const result = new AioValue('i', 0)
  const child = start(t, { target: { module: TARGETS, name: 'poolInChild' }, args: [result] })
  joined(t, child)
  t.is(result.value, 30)
})

test('POOL-52 a script that never closes its pool still exits with 0', async (t) => {
  const { status, stdout, stderr } = await runNode(`
    import { AioPool } from ${ENTRY}
    const pool = new AioPool({ processes: 2 })
    console.log(await pool.coro_map((x) => x * 2, [1, 2, 3]))
  `)
  t.is(status, 0, stderr)
  t.regex(stdout, /\[ 2, 4, 6 \]/)
})

// The first pool of a process makes its workers itself, and its supervisor watches them only
// later (process.ts): each of these runs in a fresh process, so that its pool is a first one.
const FIRST_FATES = [
  ['process.exit(7)', '() => { process.exit(7) }', 'exitcode 7', /^$/],
  // Its traceback is printed by the worker, as Python's child prints it, not left to the owner's loop.
  ['an uncaught error in a callback', "() => new Promise(() => { setTimeout(() => { throw new Error('expected in a test: crash') }) })", 'crashed or ran out of memory', /Process PoolWorker-\d+:\nError: expected in a test: crash/],
  ['running out of memory', '() => { const hog = []; for (;;) hog.push(new Array(100_000).fill(1)) }', 'crashed or ran out of memory', /./],
  // Node tells the worker's 'exit' listeners 0 here, and sets process.exitCode to 13.
  ['a promise that can never settle', '() => new Promise(() => {})', 'could never settle', /^$/],
] as const
for (const style of STYLES) {
  for (const [how, die, message, printed] of FIRST_FATES) {
    test(`the first pool of a process: its first task ends its worker (${how}); that task fails, the pool goes on (${style})`, async (t) => {
      const get = style === 'blocking' ? 'r.get(30000)' : 'await r.coro_get(30000)'
      const { status, stdout, stderr } = await runNode(`
        import { AioPool, WorkerLostError } from ${ENTRY}
        const p = new AioPool({ processes: 2, resourceLimits: { maxOldGenerationSizeMb: 32 } })
        const r = p.applyAsync(${die})
        const others = [1, 2, 3].map((x) => p.applyAsync((x) => x * 2, [x]))
        try {
          ${get}
          console.log('no error')
        } catch (error) {
          console.log(error instanceof WorkerLostError, error.message)
        }
        for (const o of others) console.log(${style === 'blocking' ? 'o.get(30000)' : 'await o.coro_get(30000)'})
        console.log(${style === 'blocking' ? 'p.apply((x) => x + 1, [41])' : 'await p.coro_apply((x) => x + 1, [41])'})
        p.terminate()
        ${style === 'blocking' ? 'p.join()' : 'await p.coro_join()'}
        console.log('joined')
      `)
      t.is(status, 0, stderr)
      const lines = stdout.trim().split('\n')
      t.true(lines[0].startsWith('true '), stdout)
      t.true(lines[0].includes(message), stdout)
      t.deepEqual(lines.slice(1), ['2', '4', '6', '42', 'joined'], stdout)
      t.regex(stderr, printed)
    })
  }

  test(`the first pool of a process, terminated while a worker's preload never finishes, joins after the load grace (${style})`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'aio-preload-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const hangs = join(dir, 'hangs.mjs')
    writeFileSync(hangs, 'setInterval(() => {}, 1000)\nawait new Promise(() => {})\n')
    // A terminate() while a worker loads waits for the load, then LOAD_GRACE_MS (5 s): the owner
    // blocked in join() must do that itself (its event loop's timer does not run).
    const { status, stdout, stderr } = await runNode(`
      import { AioPool } from ${ENTRY}
      const p = new AioPool({ processes: 1, preload: [${JSON.stringify(hangs)}] })
      await new Promise((r) => setTimeout(r, 300))
      p.terminate()
      ${style === 'blocking' ? 'p.join()' : 'await p.coro_join()'}
      console.log('joined')
    `)
    t.is(status, 0, stderr)
    t.is(stdout.trim(), 'joined')
  })

  test(`the first pool of a process, terminated while its workers still load, joins (${style})`, async (t) => {
    const { status, stdout, stderr } = await runNode(`
      import { AioPool } from ${ENTRY}
      const p = new AioPool({ processes: 2 })
      const r = p.applyAsync((x) => x, [1])
      p.terminate()
      ${style === 'blocking' ? 'p.join()' : 'await p.coro_join()'}
      try { ${style === 'blocking' ? 'r.get(30000)' : 'await r.coro_get(30000)'} } catch (error) { console.log(error.name) }
      console.log('joined')
    `)
    t.is(status, 0, stderr)
    t.deepEqual(stdout.trim().split('\n'), ['PoolTerminatedError', 'joined'])
  })
}

// A thread's first pool offers its first task to its threads while they boot (first-offer.ts): the
// first one up runs it before it loads the library. Each of these runs in a fresh process, so that
// its pool is a first one; a task tells whether the library had loaded in its thread by its mark.
const LIBRARY_IN_THREAD = "() => Symbol.for('aioprocessing.loaded') in globalThis"

for (const style of STYLES) {
  const get = (call: string) => (style === 'blocking' ? `p.${call}` : `await p.coro_${call}`)
  test(`a first pool's first task runs before its thread loads the library, and the pool goes on as usual (${style})`, async (t) => {
    const { status, stdout, stderr } = await runNode(`
      import { AioPool } from ${ENTRY}
      const p = new AioPool({ processes: 2 })
      console.log(${get(`apply(${LIBRARY_IN_THREAD})`)})
      console.log(JSON.stringify(${get('map((x) => x * 2, Array.from({ length: 100 }, (_, i) => i))')}))
      console.log(${get(`apply(${LIBRARY_IN_THREAD})`)})
      p.close()
      ${style === 'blocking' ? 'p.join()' : 'await p.coro_join()'}
    `)
    t.is(status, 0, stderr)
    t.deepEqual(stdout.trim().split('\n'), ['false', JSON.stringify(Array.from({ length: 100 }, (_, i) => i * 2)), 'true'])
  })

  test(`a first pool's first task that outlives the 5 s a thread has to boot is not taken for a thread that never started (${style})`, async (t) => {
    const { status, stdout, stderr } = await runNode(`
      import { AioPool } from ${ENTRY}
      const p = new AioPool({ processes: 1 })
      console.log(${get("apply((ms) => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); return 'slept' }, [5500])")})
      console.log(${get('apply((x) => x + 1, [41])')})
      p.terminate()
      ${style === 'blocking' ? 'p.join()' : 'await p.coro_join()'}
    `)
    t.is(status, 0, stderr)
    t.deepEqual(stdout.trim().split('\n'), ['slept', '42'])
  })

  test(`terminate() ends a first pool's first task at once, as any running task (${style})`, async (t) => {
    const dir = tempDir(t, 'aio-first-')
    const flag = join(dir, 'running')
    // Once its thread runs the task, a terminate() must not wait for the 5 s that one still
    // importing gets (LOAD_GRACE_MS).
    const { status, stdout, stderr } = await runNode(`
      import { AioPool } from ${ENTRY}
      import { existsSync } from 'node:fs'
      const p = new AioPool({ processes: 1 })
      const r = p.applyAsync(async (flag) => { (await import('node:fs')).writeFileSync(flag, ''); for (;;); }, [${JSON.stringify(flag)}])
      const until = Date.now() + 30000
      while (!existsSync(${JSON.stringify(flag)}) && Date.now() < until) await new Promise((res) => setTimeout(res, 5))
      const t0 = performance.now()
      p.terminate()
      ${style === 'blocking' ? 'p.join()' : 'await p.coro_join()'}
      console.log(performance.now() - t0 < 4000)
      try { ${style === 'blocking' ? 'r.get(30000)' : 'await r.coro_get(30000)'} } catch (error) { console.log(error.name) }
    `)
    t.is(status, 0, stderr)
    t.deepEqual(stdout.trim().split('\n'), ['true', 'PoolTerminatedError'])
  })
}

test("a first pool's first call a map: its first chunk runs before its thread loads the library, the rest the usual way, all in order", async (t) => {
  const { status, stdout, stderr } = await runNode(`
    import { AioPool } from ${ENTRY}
    const p = new AioPool({ processes: 2 })
    const out = await p.coro_map((x) => [x * 2, Symbol.for('aioprocessing.loaded') in globalThis], Array.from({ length: 12 }, (_, i) => i), 4)
    console.log(JSON.stringify(out.map(([v]) => v)))
    console.log(JSON.stringify(out.slice(0, 4).map(([, loaded]) => loaded)))
    p.terminate()
    await p.coro_join()
  `)
  t.is(status, 0, stderr)
  t.deepEqual(stdout.trim().split('\n'), [JSON.stringify(Array.from({ length: 12 }, (_, i) => i * 2)), '[false,false,false,false]'])
})

test("a first pool's first task: what it sets in process.env stays for its worker's later tasks, as when run later", async (t) => {
  const { status, stdout, stderr } = await runNode(`
    import { AioPool } from ${ENTRY}
    const p = new AioPool({ processes: 1 })
    console.log(await p.coro_apply(() => { process.env.SET_BY_FIRST_TASK = 'yes'; return Symbol.for('aioprocessing.loaded') in globalThis }))
    console.log(await p.coro_apply(() => process.env.SET_BY_FIRST_TASK ?? 'unset'))
    p.terminate()
    await p.coro_join()
  `)
  t.is(status, 0, stderr)
  t.deepEqual(stdout.trim().split('\n'), ['false', 'yes'])
})

test("terminate() ends a first pool's thread at once while it imports its first task's module, as any worker's", async (t) => {
  const dir = tempDir(t, 'aio-first-')
  const flag = join(dir, 'importing')
  const slow = join(dir, 'slow.mjs')
  writeFileSync(slow, `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(flag)}, '')\nawait new Promise((r) => setTimeout(r, 20000))\nexport const run = () => 1\n`)
  // A thread still importing the library's own modules gets LOAD_GRACE_MS (5 s) before a
  // terminate() ends it; one importing a task's module does not.
  const { status, stdout, stderr } = await runNode(`
    import { AioPool } from ${ENTRY}
    import { existsSync } from 'node:fs'
    const p = new AioPool({ processes: 1 })
    const r = p.applyAsync({ module: ${JSON.stringify(slow)}, name: 'run' })
    const until = Date.now() + 30000
    while (!existsSync(${JSON.stringify(flag)}) && Date.now() < until) await new Promise((res) => setTimeout(res, 5))
    const t0 = performance.now()
    p.terminate()
    await p.coro_join()
    console.log(performance.now() - t0 < 4000)
    try { await r.coro_get(30000) } catch (error) { console.log(error.name) }
  `)
  t.is(status, 0, stderr)
  t.deepEqual(stdout.trim().split('\n'), ['true', 'PoolTerminatedError'])
})

test("a first pool's first task whose module loads the library: the module's top-level code already sees its worker as its current process", async (t) => {
  const dir = tempDir(t, 'aio-first-')
  const mod = join(dir, 'named.mjs')
  writeFileSync(mod, `import { currentProcess } from ${ENTRY}\nconst atImport = currentProcess().name\nexport const names = () => [atImport, currentProcess().name]\n`)
  const { status, stdout, stderr } = await runNode(`
    import { AioPool } from ${ENTRY}
    const p = new AioPool({ processes: 1 })
    console.log(JSON.stringify(await p.coro_apply({ module: ${JSON.stringify(mod)}, name: 'names' })))
    p.terminate()
    await p.coro_join()
  `)
  t.is(status, 0, stderr)
  t.is(stdout.trim(), JSON.stringify(['PoolWorker-1', 'PoolWorker-1']))
})

test("a first pool's first task whose module loads the library runs once the library has set up its thread: it sees its own process", async (t) => {
  const { status, stdout, stderr } = await runNode(`
    import { AioPool } from ${ENTRY}
    const p = new AioPool({ processes: 2 })
    console.log(await p.coro_apply({ module: ${JSON.stringify(TARGETS)}, name: 'processName' }))
    p.terminate()
    await p.coro_join()
  `)
  t.is(status, 0, stderr)
  t.regex(stdout.trim(), /^PoolWorker-\d+$/)
})

// What a first task returns or throws, and what it is given, arrives as by the usual road: the
// same task run later, by a worker that has loaded the library, gives the same. The values that
// the offers port carries are sent so; the others (a Buffer, a Map, -0...) by the library's codec.
const FIRST_VALUES = [
  '1.5', '-0', 'NaN', "'h\\u00e9llo'", "'\\ud800 lone'", '2n ** 70n', 'undefined', 'null', "{ a: { b: [null, undefined, true, 'x'] } }",
  '[1, , 3]', 'Object.assign([1], { extra: 1 })', "Buffer.from('hi')", 'new Uint16Array([1, 2])', 'new Map([[1, { a: 2 }]])',
  'new Set([1])', 'new Date(0)', 'Object.assign(Object.create(null), { a: 1 })', // (its own key __proto__, written so that the source does not look like it calls a compiler helper)
  'JSON.parse(`{"${"_".repeat(2)}proto${"_".repeat(2)}": 1}`)',
  'new (class Point { constructor() { this.x = 1 } })()', '(() => { throw new RangeError("expected in a test") })()', 'Symbol("s")',
  'new Promise((r) => setTimeout(() => r([1, 2]), 10))',
  // One object twice: the clone would keep it one, the codec makes two copies.
  '(() => { const o = { k: 1 }; return { x: o, y: o } })()',
  'Object.assign([1, , 3], { x: 5 })',
  // A getter runs once by the usual road (counted in its value), and one that throws fails the task there.
  '(() => { let n = 0; return { get a() { return ++n } } })()',
  "{ get a() { throw new Error('expected in a test: getter') } }",
  'new Proxy({ a: 1 }, {})',
]

test("a first pool's first task: every kind of result and error arrives as the usual road brings it", async (t) => {
  t.timeout(4 * LONG)
  const outcome = `(make, arg) => {
    try { return Promise.resolve(make(arg)).then((v) => ({ ok: true, v }), (e) => ({ ok: false, e: e.name + ': ' + e.message })) }
    catch (e) { return { ok: false, e: e.name + ': ' + e.message } }
  }`
  const run = (expr: string) => runNode(`
    import { AioPool } from ${ENTRY}
    import { isDeepStrictEqual } from 'node:util'
    const p = new AioPool({ processes: 2 })
    const task = (arg) => { const v = ${expr}; return [v, arg, Symbol.for('aioprocessing.loaded') in globalThis] }
    const outcome = ${outcome}
    const first = await outcome((a) => p.coro_apply(task, [a]), [2, 'arg', { k: null }])
    const later = await outcome((a) => p.coro_apply(task, [a]), [2, 'arg', { k: null }])
    // Strict: prototypes alike, -0 not 0; and the same shape: holes, keys, an object met twice.
    const shape = (v, seen = new Map(), out = []) => {
      if (v === null || typeof v !== 'object') out.push(typeof v + ':' + (Object.is(v, -0) ? '-0' : String(v)))
      else if (seen.has(v)) out.push('@' + seen.get(v))
      else {
        seen.set(v, seen.size)
        out.push(Object.prototype.toString.call(v))
        for (const k of Reflect.ownKeys(v)) { out.push(String(k)); shape(v[k], seen, out) }
      }
      return out
    }
    const same = first.ok === later.ok && (first.ok ? isDeepStrictEqual(first.v.slice(0, 2), later.v.slice(0, 2)) && shape(first.v.slice(0, 2)).join() === shape(later.v.slice(0, 2)).join() : first.e.replace(/first-task\\.js|shared-\\w+\\.js/g, '') === later.e.replace(/first-task\\.js|shared-\\w+\\.js/g, ''))
    console.log(JSON.stringify({ same, first: first.ok ? first.v[2] : first.e, later: later.ok ? later.v[2] : later.e }))
    p.terminate()
    await p.coro_join()
  `)
  for (let i = 0; i < FIRST_VALUES.length; i += 3) {
    const batch = FIRST_VALUES.slice(i, i + 3)
    const outs = await Promise.all(batch.map(run))
    outs.forEach(({ status, stdout, stderr }, k) => {
      t.is(status, 0, `${batch[k]}: ${stderr}`)
      const r = JSON.parse(stdout.trim().split('\n').pop()!)
      t.true(r.same, `${batch[k]}: ${stdout}`)
      // The first ran in a thread without the library, the later one in a worker that had it.
      if (r.first === false || r.first === true) t.deepEqual([r.first, r.later], [false, true], batch[k])
    })
  }
})

test('the first pool of a process: a task handing a large item to the feeder while the owner awaits', async (t) => {
  // A put larger than the queue's ring goes through the feeder, which the supervisor runs: it
  // must come up although the owner never blocks.
  const { status, stdout, stderr } = await runNode(`
    import { AioPool, AioQueue } from ${ENTRY}
    const q = new AioQueue()
    const p = new AioPool({ processes: 2 })
    const done = p.coro_apply((q) => { q.put(new Uint8Array(4 << 20).fill(7)); return 'put' }, [q])
    const item = await q.coro_get(true, 30000)
    console.log(await done, item.length, item[item.length - 1])
    p.terminate()
    await p.coro_join()
  `)
  t.is(status, 0, stderr)
  t.is(stdout.trim(), `put ${4 << 20} 7`)
})

for (const style of STYLES) {
  test(`a pool whose workers cannot load their preload module fails its tasks instead of respawning for ever (${style})`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'aio-preload-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const bad = join(dir, 'throws.mjs')
    writeFileSync(bad, "throw new Error('expected in a test: this preload fails')")
    const p = pool(t, { processes: 1, preload: [bad] })
    const r = p.applyAsync((x: number) => x, [1])
    const error = await (async () => {
      try {
        await call(style, r, 'get', LONG)
      } catch (e) {
        return e as Error
      }
    })()
    t.true(error instanceof ProcessError, String(error))
    t.regex(error!.message, /ended before it was ready .*preload/)
  })
}

test('a task whose promise can never settle fails with WorkerLostError naming the cause', async (t) => {
  const p = pool(t, { processes: 1 })
  await t.throwsAsync(p.coro_apply(() => new Promise(() => {})), { instanceOf: WorkerLostError, message: /could never settle/ })
  t.is(await p.coro_apply((x: number) => x + 1, [1]), 2)
})

test('a callback that throws is reported and the pool goes on', async (t) => {
  const p = pool(t, { processes: 1 })
  const r = p.applyAsync((x: number) => x, [1], { callback: () => { throw new Error('expected in a test: callback') } })
  t.is(await r.coro_get(LONG), 1)
  t.is(await p.coro_apply((x: number) => x + 1, [1]), 2)
})

void AioProcess

test("a pool's worker, thread or process, runs its loop without importing a module for it: the bundle loads the loop with the worker's first module (the import cost a booting worker ~2 ms before its first task)", async (t) => {
  // Every module loaded, by any thread or process, logged by a loader hook that a worker thread
  // and a spawned process inherit with the parent's flags.
  const dir = mkdtempSync(join(tmpdir(), 'aio-pool-loads-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const context of ['thread', 'spawn']) {
    const log = join(dir, `${context}.log`)
    const hooks = `import { appendFileSync } from 'node:fs'
      export async function load(url, context, next) {
        appendFileSync(${JSON.stringify(log)}, url + '\\n')
        return next(url, context)
      }`
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)})`
    const script = `
      const { AioPool } = await import(${ENTRY})
      const p = new AioPool({ processes: 1, context: '${context}' })
      console.log(await p.coro_apply((x) => x * 2, [21]))
      p.close()
      await p.coro_join()`
    const r = await runNodeWith(['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script])
    t.is(r.status, 0, r.stderr)
    t.is(r.stdout.trim(), '42')
    const loads = readFileSync(log, 'utf8').trim().split('\n')
    // The log sees the worker's first module: it would see the loop's module too. A first pool's
    // thread starts with first-task.js, which imports the library from pool-worker.js (boot() and
    // the loop in one file), and no other entry: neither bootstrap.js nor a module for the loop.
    if (context === 'thread') {
      t.true(loads.some((u) => u.endsWith('/dist/lib/first-task.js')), loads.join('\n'))
      t.is(loads.filter((u) => u.endsWith('/dist/lib/pool-worker.js')).length, 1, loads.join('\n'))
      t.false(loads.some((u) => u.endsWith('/dist/lib/bootstrap.js')), loads.join('\n'))
    } else {
      t.true(loads.some((u) => u.endsWith('/dist/lib/spawn-main.js')), loads.join('\n'))
      t.false(loads.some((u) => /\/dist\/lib\/pool-process-worker\.js$/.test(u)), loads.join('\n'))
    }
  }
})

test("a thread's first pool whose workers' data cannot be made throws at once and leaves no thread behind: the process ends (its threads, made before the data, kept it alive)", async (t) => {
  // A first pool makes its threads before anything else (process.ts threadsAhead); they wait for
  // their data, and one whose data could not be made waited for ever, ref'd.
  const r = await runNode(`
    import { AioPool } from ${ENTRY}
    for (const initargs of [[Symbol('x')], [1, () => 2]]) {
      try { new AioPool({ processes: 3, initializer: () => {}, initargs }) } catch (e) { console.log(e.name) }
    }
    const p = new AioPool({ processes: 2 })
    console.log(await p.coro_apply((x) => x + 1, [1]))
    p.terminate()`, process.env, [], LONG)
  t.is(r.status, 0, `the process did not end by itself: ${r.stderr}`)
  t.deepEqual(r.stdout.trim().split('\n'), ['TypeError', 'TypeError', '2'])
})
