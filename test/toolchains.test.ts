// Targets and tasks as users' toolchains compile them: esbuild (what tsx runs) with keepNames,
// tsc and swc, for targets from ES2017. Each compiled function calls the helpers its compiler put at
// the top of the module (__name, __using/__callDispose, __publicField, __rest, __classPrivateField*...),
// which the library supplies to the function rebuilt from its source.
import test from 'ava'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, transform } from 'esbuild'
import ts from 'typescript'
import swc from '@swc/core'
import { AioConnection, AioListener, AioLock, AioPipe, AioPool, AioProcess, AioQueue, ValueError, getContext } from '../generated/index.generated.js'
import { LONG, runNodeWith } from './helpers.js'
import type { ProcessOptions } from '../generated/index.generated.js'

// Loops with `using`, a named function expression, a class with fields, a static and a #private,
// object spread and rest: 2·n + 1 + 2 + 3 + 1 + 2.
const BODY = `
  let total = 0
  for (let i = 0; i < n; i++) { using _ = lock.hold(); total += 1 }
  const named = function inner(x: number) { return x * 2 }
  class K { f = 1; static s = 2; #p = 3; get p() { return this.#p } }
  const o = { a: 1, b: 2 }
  const { a, ...rest } = { ...o, c: 3 }
  const k = new K()
  return named(total) + k.f + K.s + k.p + a + Object.keys(rest).length`
const MODULE = `
export const calc = (lock: any, n: number) => {${BODY}
}
export const run = (q: any, lock: any, n: number) => {
  const result = ((lock: any, n: number) => {${BODY}
  })(lock, n)
  q.put(result)
}
export const arun = async (q: any, lock: any, n: number) => {
  await using _ = await lock.coro_hold()
  q.put(n + 1)
}
`
const expected = (n: number): number => 2 * n + 9

const toolchains: Array<[string, () => Promise<string>]> = [
  ...(['es2017', 'es2020', 'es2022', 'node20'] as const).map((target): [string, () => Promise<string>] => [
    `esbuild --target=${target} --keep-names (as tsx runs it)`,
    async () => (await transform(MODULE, { loader: 'ts', format: 'esm', target, keepNames: true })).code,
  ]),
  ...(['ES2017', 'ES2022'] as const).map((target): [string, () => Promise<string>] => [
    `tsc --target ${target}`,
    async () => ts.transpileModule(MODULE, { compilerOptions: { target: ts.ScriptTarget[target], module: ts.ModuleKind.ESNext } }).outputText,
  ]),  ...(['es2017', 'es2020', 'es2022'] as const).map((target): [string, () => Promise<string>] => [
    `swc --target ${target} (helpers inlined)`,
    async () => (await swc.transform(MODULE, { jsc: { parser: { syntax: 'typescript' }, target, externalHelpers: false }, module: { type: 'es6' } })).code,
  ]),
]

const dir = mkdtempSync(join(tmpdir(), 'aio-toolchains-'))
writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
test.after.always(() => rmSync(dir, { recursive: true, force: true }))

type Compiled = { calc: (lock: unknown, n: number) => number; run: (...a: unknown[]) => void; arun: (...a: unknown[]) => Promise<void> }
async function compiled(i: number, make: () => Promise<string>): Promise<Compiled> {
  const file = join(dir, `m${i}.mjs`)
  writeFileSync(file, await make())
  return (await import(pathToFileURL(file).href)) as Compiled
}

toolchains.forEach(([name, make], i) => {
  test(`${name}: inline targets and tasks run right in a thread, a spawned process and a pool`, async (t) => {
    const m = await compiled(i, make)
    // In this thread, as compiled (the helpers are in the module).
    t.is(m.calc(new AioLock(), 5), expected(5))

    const lock = new AioLock()
    const q = new AioQueue<number>()
    for (const target of [m.run, m.arun]) {
      const p = new AioProcess({ target, args: [q, lock, 7] })
      p.start()
      await p.coro_join(LONG)
      t.is(p.exitcode, 0, `${target.name} failed in a thread`)
    }
    t.deepEqual([await q.coro_get(true, LONG), await q.coro_get(true, LONG)], [expected(7), 8])

    const pool = new AioPool({ processes: 2 })
    t.teardown(() => pool.terminate())
    t.deepEqual(await pool.coro_starmap(m.calc, [[lock, 1], [lock, 2], [lock, 3]]), [1, 2, 3].map(expected))

    if (i % 3 === 0) {
      // Spawned processes cost ~100 ms each: two of the six toolchains.
      const ctx = getContext('spawn')
      const sq = ctx.AioQueue<number>()
      const p = ctx.AioProcess({ target: m.run, args: [sq, ctx.AioLock(), 4] })
      p.start()
      await p.coro_join(LONG)
      t.is(p.exitcode, 0)
      t.is(await sq.coro_get(true, LONG), expected(4))
    }
  })
})

test('a target calling a compiler helper the library does not supply is refused before it runs, naming it', (t) => {
  const target = new Function('return function target(a) { return __extends(a, Object) }')() as () => void
  const error = t.throws(() => new AioProcess({ target }).start(), { instanceOf: TypeError })
  t.regex(error!.message, /__extends/)
  t.regex(error!.message, /module, name|ES2022/)
  // A function of the user's named like a helper, as a parameter or a destructured binding, is theirs.
  const names = new AioQueue<string>()
  const named = new Function('return function target(q, xs, _get_value = (x) => x.v) { const { _to_upper } = { _to_upper: (s) => s.toUpperCase() }; q.put(_to_upper(xs.map((x) => _get_value(x)).join(""))) }')() as (...a: unknown[]) => void
  const namedP = new AioProcess({ target: named, args: [names, [{ v: 'a' }, { v: 'b' }]] })
  namedP.start()
  namedP.join(LONG)
  t.is(names.get(true, LONG), 'AB')
  // swc for ES2016 wraps async functions in _async_to_generator, a helper not supplied.
  const swcOld = new Function('return function target(a) { return _async_to_generator(function* () { yield a })() }')() as () => void
  t.throws(() => new AioProcess({ target: swcOld }).start(), { instanceOf: TypeError, message: /calls _async_to_generator, a helper its compiler \(swc\).*ES2022/ })
  // One that defines a function of that shape itself is its own business.
  const own = new Function('return function target() { function __extends(x) { return x } return __extends(1) }')() as () => void
  const q = new AioProcess({ target: own })
  t.notThrows(() => q.start())
  q.join(LONG)
  t.is(q.exitcode, 0)
})

test("the README's quick start under tsx counts right (esbuild's `using` helpers reach the worker)", async (t) => {
  const example = readFileSync(new URL('../../examples/quickstart.ts', import.meta.url), 'utf8')
  const entry = new URL('../generated/index.generated.js', import.meta.url).href
  const file = join(dir, 'quickstart.ts')
  writeFileSync(file, example.replace("'../generated/index.generated.js'", JSON.stringify(entry)))
  const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url))
  const { status, stdout, stderr } = await runNodeWith([tsx, file])
  t.is(status, 0, stderr)
  t.regex(stdout, /counter = 200000 \(expected 200000\), worker exitcode = 0/)
  t.is(stderr, '')
})

test('a method that uses `this`, or a class, given as a target or task is refused before it runs, not run without its object', async (t) => {
  const o = { k: 3, times(x: number) { return this.k * x }, plus(x: number) { return x + 1 } }
  class Job {}
  t.throws(() => new AioProcess({ target: o.times, args: [2] }).start(), { instanceOf: TypeError, message: /method that uses `this`/ })
  t.throws(() => new AioProcess({ target: Job as never }).start(), { instanceOf: TypeError, message: /is a class/ })
  const pool = new AioPool({ processes: 1 })
  t.teardown(() => pool.terminate())
  await t.throwsAsync(async () => pool.coro_apply(o.times, [2]), { instanceOf: TypeError, message: /method that uses `this`/ })
  // A method that does not use `this` is a plain function shipped as source: it runs, also with
  // "this" in a string or a comment.
  t.is(await pool.coro_apply(o.plus, [2]), 3)
  const said = { run(x: string) { /* not using this */ return 'this is ' + x } }
  t.is(await pool.coro_apply(said.run, ['fine']), 'this is fine')
})

test('a global of the sending thread that the receiving one lacks fails where the function runs, with the reason and the fix, naming it', async (t) => {
  // The sender allows every name its own globalThis has (free-names.test.ts covers the refusals).
  const g = globalThis as { senderOnly?: number }
  g.senderOnly = 5
  t.teardown(() => delete g.senderOnly)
  const pool = new AioPool({ processes: 1 })
  t.teardown(() => pool.terminate())
  const task = new Function('return (x) => x + senderOnly')() as (x: number) => number
  const error = await t.throwsAsync(async () => pool.coro_apply(task, [1]), { instanceOf: ReferenceError })
  t.regex(error!.message, /senderOnly is not defined — the function was sent .* as source, and senderOnly is a variable of the scope it was written in.*pass senderOnly in args, or use \{ module, name \}/)
  // A ReferenceError the function's own source does not name is passed on as it is.
  const other = await t.throwsAsync(async () => pool.coro_apply(() => new Function('return not' + 'There')(), []), { instanceOf: ReferenceError })
  t.is(other!.message, 'notThere is not defined')
})

test('the quick start as plain JavaScript on Node 20 (examples/quickstart.mjs, no `using`) counts right', async (t) => {
  const file = fileURLToPath(new URL('../../examples/quickstart.mjs', import.meta.url))
  const { status, stdout, stderr } = await runNodeWith([file])
  t.is(status, 0, stderr)
  t.regex(stdout, /counter = 200000 \(expected 200000\), worker exitcode = 0/)
})

test('with() and coro_with() hold a lock around a function, release it however the function ends, and pass its result on', async (t) => {
  const lock = new AioLock()
  t.is(lock.with(() => 7), 7)
  t.throws(() => lock.with(() => { throw new RangeError('inside') }), { instanceOf: RangeError })
  t.true(lock.acquire(false), 'released after a throw')
  lock.release()
  t.throws(() => lock.with((async () => 1) as never), { instanceOf: TypeError, message: /coro_with/ })
  t.true(lock.acquire(false), 'released after refusing an async body')
  lock.release()
  t.throws(() => lock.with(42 as never), { instanceOf: TypeError, message: /body must be a function/ })
  t.is(await lock.coro_with(async () => { await new Promise((r) => setTimeout(r, 1)); return 'done' }), 'done')
  await t.throwsAsync(lock.coro_with(async () => { throw new RangeError('async inside') }), { instanceOf: RangeError })
  t.true(lock.acquire(false))
  // A coro_with waiting for a held lock can be aborted; the body never runs.
  const controller = new AbortController()
  let ran = false
  const waiting = lock.coro_with(() => { ran = true }, { signal: controller.signal })
  controller.abort(new Error('gave up'))
  await t.throwsAsync(waiting, { message: 'gave up' })
  t.false(ran)
  lock.release()
})

test('listeners, connections and queues are disposable: leaving a `using` block closes them', async (t) => {
  let listener: AioListener | undefined
  let conn: AioConnection | undefined
  {
    using l = new AioListener(['127.0.0.1', 0])
    listener = l
    const [a, b] = AioPipe()
    using c = a
    conn = c
    b.close()
  }
  t.throws(() => listener!.accept(), { message: /closed/ })
  t.true(conn!.closed)
  let queue: AioQueue<number> | undefined
  {
    await using q = new AioQueue<number>()
    queue = q
    q.put(1)
  }
  t.throws(() => queue!.put(2), { instanceOf: ValueError })
})

test('a TypeScript module target loads with preload: [\'tsx/esm/api\'] in a thread, a spawned process and a pool, given to each or to the context, and says what is missing without it', async (t) => {
  const file = join(dir, 'tasks.ts')
  writeFileSync(file, 'export function double(x: number): number { return x * 2 }\nexport function run(q: { put(v: unknown): void }, x: number): void { q.put(double(x)) }\n')
  const module = pathToFileURL(file)
  const preload = ['tsx/esm/api']

  // A process of `ctx` runs the module's run(q, x), which puts 2·x.
  type Maker = { AioQueue<T>(): { coro_get(block: boolean, timeout: number): Promise<T> }; AioProcess(o: ProcessOptions): AioProcess }
  const doubles = async (ctx: Maker, x: number, options: Partial<ProcessOptions> = {}) => {
    const q = ctx.AioQueue<number>()
    const p = ctx.AioProcess({ target: { module, name: 'run' }, args: [q, x], ...options })
    p.start()
    await p.coro_join(LONG)
    t.is(p.exitcode, 0)
    t.is(await q.coro_get(true, LONG), 2 * x)
  }
  await doubles(getContext('thread') as Maker, 21, { preload })
  await doubles(getContext('spawn') as unknown as Maker, 5, { preload })

  const pool = new AioPool({ processes: 1, preload })
  t.teardown(() => pool.terminate())
  t.is(await pool.coro_apply({ module, name: 'double' }, [4]), 8)
  // The same, given once to the context: its processes and pools preload it.
  const tsCtx = getContext('thread', { preload })
  await doubles(tsCtx as Maker, 1)
  await doubles(getContext('spawn', { preload }) as unknown as Maker, 3)
  const ctxPool = tsCtx.AioPool({ processes: 1 })
  t.teardown(() => ctxPool.terminate())
  t.is(await ctxPool.coro_apply({ module, name: 'double' }, [5]), 10)
  t.is(getContext('thread'), getContext('thread', {}), 'a context without options is the shared one')

  const bare = new AioPool({ processes: 1 })
  t.teardown(() => bare.terminate())
  const error = await t.throwsAsync(async () => bare.coro_apply({ module, name: 'double' }, [4]))
  t.regex(error!.message, /Unknown file extension ".ts".*preload: \['tsx\/esm\/api'\]/s)
})

test('an app bundled with aioprocessing inside it: a pool, start(), a listener and a client say to keep aioprocessing external, at once (a process printed the supervisor\'s failure and its join waited for ever; a listener waited 30 s, a client for ever)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'aio-bundled-app-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lib = fileURLToPath(new URL('../lib/index.js', import.meta.url))
  writeFileSync(join(dir, 'app.mjs'), `import { AioClient, AioListener, AioPool, AioProcess, ProcessError } from ${JSON.stringify(lib)}
// A first pool makes its threads before it looks for the file (process.ts threadsAhead): they go again.
try { new AioPool({ processes: 2 }); console.log('pool') } catch (e) { console.log(e instanceof ProcessError, e.message) }
const p = new AioProcess({ target: () => 1 })
try { p.start(); p.join(); console.log('started', p.exitcode) } catch (e) { console.log(e instanceof ProcessError, e.message) }
try { new AioListener(${JSON.stringify(join(dir, 'l.sock'))}); console.log('listening') } catch (e) { console.log(e instanceof ProcessError, e.message) }
try { await AioClient.coro(${JSON.stringify(join(dir, 'none.sock'))}); console.log('connected') } catch (e) { console.log(e instanceof ProcessError, e.message) }`)
  await build({ entryPoints: [join(dir, 'app.mjs')], bundle: true, platform: 'node', format: 'esm', outfile: join(dir, 'out', 'app.mjs'), logLevel: 'silent' })
  const r = await runNodeWith([join(dir, 'out', 'app.mjs')])
  t.is(r.status, 0, r.stderr)
  const [pool, process, listener, client] = r.stdout.trim().split('\n')
  t.regex(pool, /^true cannot start a process: the library's file .*supervisor-start\.js is missing.*keep aioprocessing external/)
  t.regex(process, /^true cannot start a process: the library's file .*supervisor-start\.js is missing.*keep aioprocessing external/)
  t.regex(listener, /^true cannot start the I\/O thread that sockets need: the library's file .*io-thread\.js is missing.*keep aioprocessing external/)
  t.regex(client, /^true cannot start the I\/O thread that sockets need: the library's file .*io-thread\.js is missing/)
})

test('a relative module path is refused with the new URL(..., import.meta.url) form; a URL or an absolute path is taken', (t) => {
  t.throws(() => new AioProcess({ target: { module: './tasks.mjs', name: 'run' } }), { instanceOf: TypeError, message: /relative.*new URL\('\.\/tasks\.mjs', import\.meta\.url\)/ })
  t.throws(() => new AioProcess({ target: () => {}, preload: ['../x.mjs'] }), { instanceOf: TypeError, message: /preload\[0\] '\.\.\/x\.mjs' is relative/ })
  t.notThrows(() => new AioProcess({ target: { module: join(dir, 'tasks.ts'), name: 'run' } }))
  t.notThrows(() => new AioProcess({ target: { module: pathToFileURL(join(dir, 'tasks.ts')), name: 'run' } }))
})
