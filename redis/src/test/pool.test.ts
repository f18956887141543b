// The Redis pool with real worker processes (worker-cli.js): results and errors come back, a
// worker killed mid-task has its task run again by another, a task that kills every worker it
// meets fails with WorkerLostError, terminate() takes back what is left, and only { module, name }
// tasks of a worker's own modules run.
import test from 'ava'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PoolTerminatedError, ValueError, WorkerLostError } from 'aioprocessing'
import { redisContext, type RedisContext } from '../index.js'
import { startRedis } from './context.js'

const CLI = fileURLToPath(new URL('../worker-cli.js', import.meta.url))
const TASKS = fileURLToPath(new URL('./tasks.js', import.meta.url))
const LONG = 30_000
const IDLE = 1_000
const task = (name: string) => ({ module: 'tasks', name })

let n = 0
function setup(t: { teardown(f: () => void): void }, workers = 2): { ctx: RedisContext; procs: ChildProcess[]; dir: string; pool: string; ns: string; url: string } {
  const server = startRedis()
  const dir = mkdtempSync(join(tmpdir(), 'aio-redis-pool-'))
  const ns = `pool${process.pid}-${n++}`
  const pool = 'p'
  const procs = Array.from({ length: workers }, () =>
    spawn(process.execPath, [CLI, '--url', server.socket, '--namespace', ns, '--pool', pool, '--module', TASKS, '--idle', String(IDLE)], { stdio: ['ignore', 'ignore', 'inherit'] }),
  )
  const ctx = redisContext({ url: server.socket, namespace: ns })
  t.teardown(() => {
    for (const p of procs) p.kill('SIGKILL')
    ctx.close()
    server.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { ctx, procs, dir, pool, ns, url: server.socket }
}

const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r())))

test('two worker processes: apply, map (chunked), starmap, imap in order and as they finish, in both styles', async (t) => {
  const { ctx, pool: name } = setup(t)
  const pool = ctx.AioPool(name, { idle: IDLE })
  t.is(pool.apply<number>(task('square'), [7]), 49)
  t.is(await pool.coro_apply<number>(task('add'), [2, 3]), 5)
  const xs = Array.from({ length: 2_000 }, (_, i) => i)
  t.deepEqual(pool.map<number>(task('square'), xs), xs.map((x) => x * x))
  t.deepEqual(await pool.coro_map<number>(task('square'), xs, 100), xs.map((x) => x * x))
  t.deepEqual(pool.starmap<number>(task('add'), [[1, 2], [3, 4]]), [3, 7])
  t.deepEqual([...pool.imap<number>(task('square'), [1, 2, 3])], [1, 4, 9])
  const finished: number[] = []
  for await (const v of pool.imapUnordered<number>(task('sleepy'), [300, 1, 150].map((ms) => ms))) finished.push(v)
  t.deepEqual(finished.sort((a, b) => a - b), [1, 150, 300])
  const later = pool.applyAsync<number>(task('sleepy'), [5, 50])
  t.is(await later.coro_get(LONG), 5)
  t.true(later.successful())
  pool.close()
  pool.join(LONG)
})

test('two pool workers meet at named objects: a barrier of 2 passes only with both, each reports to a named queue', async (t) => {
  const { ctx, pool: name, url, ns } = setup(t, 2)
  const pool = ctx.AioPool(name, { idle: IDLE })
  const both = await pool.coro_starmap<number>(task('meet'), [[url, ns], [url, ns]], 1)
  t.is(new Set(both).size, 2, 'the two tasks ran in two worker processes')
  const met = ctx.AioQueue<number>('met')
  const reported = [met.get(true, LONG), met.get(true, LONG)]
  t.deepEqual(reported.sort(), [...both].sort())
})

test("a task's error comes back as its class, with the worker's stack; unknown modules and inline functions are refused", async (t) => {
  const { ctx, pool: name } = setup(t, 1)
  const pool = ctx.AioPool(name, { idle: IDLE })
  const e = t.throws(() => pool.apply(task('fail'), [1]), { instanceOf: RangeError, message: 'bad 1' })
  t.regex(String(e?.stack), /in a pool worker[\s\S]*tasks\.js/)
  t.throws(() => pool.apply({ module: 'elsewhere', name: 'x' }), { instanceOf: ValueError, message: /no module 'elsewhere'/ })
  t.throws(() => pool.apply((() => 1) as never), { instanceOf: TypeError, message: /\{ module, name \} only/ })
  await t.throwsAsync(pool.coro_apply(task('nothing')), { instanceOf: ValueError, message: /no function 'nothing'/ })
})

// Serial: the other tests' blocking calls would hold this test's event loop while its victim's task ends.
test.serial('a worker killed mid-task (SIGKILL): the task runs again on the other worker and every result comes back', async (t) => {
  const { ctx, procs, dir, pool: name } = setup(t)
  const pool = ctx.AioPool(name, { idle: IDLE })
  const results = pool.starmapAsync<[number, number]>(task('marked'), [0, 1, 2, 3].map((x) => [x, dir, 3_000]), 1)
  // Wait until a worker started a task, then kill that worker.
  const end = Date.now() + LONG
  let started: string | undefined
  while (!(started = readdirSync(dir).find((f) => f.startsWith('started-'))) && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  t.truthy(started)
  const [, x, pid] = started!.split('-').map(Number)
  const victim = procs.find((p) => p.pid === pid)!
  victim.kill('SIGKILL')
  await exited(victim)
  const out = await results.coro_get(LONG)
  t.deepEqual(out.map(([i]) => i), [0, 1, 2, 3])
  t.not(out[x][1], pid, `task ${x} was finished by another worker`)
  t.true(readdirSync(dir).filter((f) => f.startsWith(`started-${x}-`)).length >= 2, `task ${x} started twice`)
})

test('a worker killed while it sends a result: the task is answered once, by it or by the worker that runs it again', async (t) => {
  const { ctx, dir, pool: name } = setup(t, 2)
  const pool = ctx.AioPool(name, { idle: IDLE })
  // Before, the worker acknowledged the entry and then pushed the result: killed between the two,
  // the task was acknowledged, never answered, and the pool waited for ever.
  t.is(await pool.applyAsync<number>(task('dieAfterReturn'), [5, join(dir, 'marker')]).coro_get(LONG), 5)
  t.is(pool.apply<number>(task('square'), [4]), 16)
})

test('a task that kills every worker it meets fails with WorkerLostError after its retry; others are unaffected', async (t) => {
  const { ctx, pool: name } = setup(t, 2)
  const pool = ctx.AioPool(name, { idle: IDLE, retries: 1 })
  t.is(pool.apply<number>(task('square'), [3]), 9)
  await t.throwsAsync(pool.coro_apply(task('die'), [], {}), { instanceOf: WorkerLostError })
})

test('terminate() takes back the tasks not finished: they fail with PoolTerminatedError, and the pool takes no more', (t) => {
  const { ctx, pool: name } = setup(t, 0)
  const pool = ctx.AioPool(name, { idle: IDLE })
  // No worker: nothing runs.
  const r = pool.applyAsync(task('square'), [2])
  pool.terminate()
  t.throws(() => r.get(LONG), { instanceOf: PoolTerminatedError })
  t.throws(() => pool.apply(task('square'), [2]), { instanceOf: ValueError, message: /not running/ })
  pool.join(LONG)
})

test('a worker with a bad command line ends with 2 and its usage, never running as a worker of no slots', (t) => {
  for (const bad of [['--concurrency', 'abc'], ['--concurrency', '0'], ['--idle', 'soon'], ['--bogus']]) {
    // Before, --concurrency abc made a worker of NaN slots that exited 0 at once, and --bogus threw a stack.
    const r = spawnSync(process.execPath, [CLI, '--url', '/nonexistent.sock', '--pool', 'p', '--module', TASKS, ...bad], { encoding: 'utf8', timeout: LONG })
    t.is(r.status, 2, `${bad.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /usage: aioprocessing-worker/, bad.join(' '))
  }
})
