// The Redis context across OS processes and under failure: processes meeting at named objects, a
// lock or semaphore holder killed with SIGKILL (its lease frees it), a stale holder refused, Redis
// restarted under a waiting consumer, and 4 producers × 4 consumers with aborts, counted exactly.
import ava from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Empty, OSError, ValueError } from 'aioprocessing'
import { Redis } from 'ioredis'
import { redisContext, type RedisContext } from '../index.js'
import { startRedis, type RedisServer } from './context.js'

const INDEX = JSON.stringify(new URL('../index.js', import.meta.url).href)
const LONG = 30_000

// One test at a time: these tests block this thread in the context's blocking calls (and in
// startRedis), and run OS processes against windows of time. Run together, as ava runs a file's
// tests by default, each one's blocking calls stopped the others' timers, pipes and spawns: this
// thread stalled for up to 48 s on a loaded machine, and a child's line, a queued waiter or a
// bounded call was 'not in time' while it was there.
const test = ava.serial

interface Child {
  proc: ChildProcess
  lines: string[]
  line(i: number): Promise<string>
  exited: Promise<number | null>
  err(): string
}

/** A Node process running `body` (an ES module with `ctx` made for `url`); its stdout lines collected. */
function child(t: { teardown(f: () => void): void }, dir: string, url: string, ns: string, body: string, lease = 10_000): Child {
  const file = join(dir, `child-${Math.random().toString(36).slice(2)}.mjs`)
  writeFileSync(file, `import { redisContext } from ${INDEX}\nconst ctx = redisContext({ url: ${JSON.stringify(url)}, namespace: ${JSON.stringify(ns)}, lease: ${lease} })\n${body}\n`)
  const proc = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => proc.kill('SIGKILL'))
  const lines: string[] = []
  let rest = ''
  let err = ''
  proc.stdout!.on('data', (d) => {
    rest += d
    const parts = rest.split('\n')
    rest = parts.pop()!
    lines.push(...parts)
  })
  proc.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)))
  let done = false
  void exited.then(() => (done = true))
  return {
    proc,
    lines,
    exited,
    err: () => err,
    async line(i) {
      const end = Date.now() + LONG
      while (lines.length <= i) {
        if (done && lines.length <= i) throw new Error(`the child ended before line ${i}: ${lines.join('\n')}\n${err}`)
        if (Date.now() > end) throw new Error(`no line ${i} in time: ${lines.join('\n')}\n${err}`)
        await new Promise((r) => setTimeout(r, 5))
      }
      return lines[i]
    },
  }
}

/** Waits until `n` waiters are parked on `cond` (its text says so). */
async function parkedOn(cond: object, n: number): Promise<void> {
  const end = Date.now() + LONG
  while (!String(cond).endsWith(`waiters=${n})`)) {
    if (Date.now() > end) throw new Error(`not ${n} waiters in time: ${String(cond)}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

let n = 0
function setup(t: { teardown(f: () => void): void }, lease = 10_000): { server: RedisServer; ctx: RedisContext; ns: string; dir: string } {
  const server = startRedis()
  const dir = mkdtempSync(join(tmpdir(), 'aio-redis-test-'))
  const ns = `f${process.pid}-${n++}`
  const ctx = redisContext({ url: server.socket, namespace: ns, lease })
  t.teardown(() => {
    ctx.close()
    server.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { server, ctx, ns, dir }
}

test('two OS processes meet at named objects: a queue, an event, a dict, a list, a Namespace, a Value', async (t) => {
  const { server, ctx, ns, dir } = setup(t)
  const c = child(t, dir, server.socket, ns, `
const q = ctx.AioQueue('jobs')
for (let i = 0; i < 100; i++) q.put({ i, tag: 'from the child' })
ctx.dict('config').set('mode', 'fast')
ctx.list('log').append('child was here')
const ns = ctx.Namespace('state'); ns.phase = 2
ctx.AioValue('count', 'i', 0).value = 41
ctx.AioEvent('done').set()
ctx.close()
`)
  t.true(await ctx.AioEvent('done').coro_wait(LONG))
  const q = ctx.AioQueue('jobs')
  const got = []
  for (let i = 0; i < 100; i++) got.push(i % 2 ? q.get(true, LONG) : await q.coro_get(true, LONG))
  t.deepEqual(got, Array.from({ length: 100 }, (_, i) => ({ i, tag: 'from the child' })))
  t.is(ctx.dict('config').get('mode'), 'fast')
  t.deepEqual(ctx.list('log').toArray(), ['child was here'])
  t.is((ctx.Namespace('state') as unknown as Record<string, unknown>).phase, 2)
  t.is(ctx.AioValue('count', 'i').value, 41)
  t.is(await c.exited, 0, c.err())
})

test('a lock holder killed with SIGKILL frees the lock within its lease; a waiter gets it, with a greater fencing number', async (t) => {
  const { server, ctx, ns, dir } = setup(t, 1_000)
  const c = child(t, dir, server.socket, ns, `
const lock = ctx.AioLock('db')
lock.acquire()
console.log('held', lock.callMethod('fence'))
setInterval(() => {}, 1000)
`, 1_000)
  const fence = Number((await c.line(0)).split(' ')[1])
  const lock = ctx.AioLock('db')
  t.false(lock.acquire(false))
  const waiting = lock.coro_acquire(true, LONG)
  c.proc.kill('SIGKILL')
  await c.exited
  t.true(await waiting)
  t.true(Number(lock.callMethod('fence')) > fence)
  lock.release()
})

test('a semaphore slot of a holder killed with SIGKILL comes back within its lease', async (t) => {
  const { server, ctx, ns, dir } = setup(t, 1_000)
  const c = child(t, dir, server.socket, ns, `
const s = ctx.AioSemaphore('slots', 2)
s.acquire(); s.acquire()
console.log('held both')
setInterval(() => {}, 1000)
`, 1_000)
  await c.line(0)
  const s = ctx.AioSemaphore('slots', 2)
  t.false(s.acquire(false))
  c.proc.kill('SIGKILL')
  await c.exited
  t.true(await s.coro_acquire(true, LONG))
  t.true(await s.coro_acquire(true, LONG))
  t.is(s.getValue(), 0)
  s.release(2)
  t.is(s.getValue(), 2)
})

test('a Condition waiter killed while it waits: once its lease ran out, notify(1) passes over it and wakes the live waiter', async (t) => {
  const { server, ctx, ns, dir } = setup(t, 1_000)
  const c = child(t, dir, server.socket, ns, `
const cond = ctx.AioCondition('c')
cond.acquire()
console.log('waiting')
cond.wait()
`, 1_000)
  await c.line(0)
  const cond = ctx.AioCondition('c')
  const parked = (n: number): Promise<void> => parkedOn(cond, n)
  await parked(1)
  c.proc.kill('SIGKILL')
  await c.exited
  // Its lease (renewed while it waited) runs out: past that, Redis knows the waiter is gone.
  const seen = new Redis(server.socket)
  t.teardown(() => seen.disconnect())
  const end = Date.now() + LONG
  while ((await seen.keys(`${ns}:Condition:c:alive:*`)).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  // Before, the dead waiter stayed first in the list and took the notification: the live one slept on.
  const other = redisContext({ url: server.socket, namespace: ns, lease: 1_000 })
  t.teardown(() => other.close())
  const notifier = other.AioCondition('c')
  t.true(await cond.coro_acquire(true, LONG))
  const woken = cond.coro_wait(LONG)
  await parked(2)
  t.true(await notifier.coro_acquire(true, LONG))
  notifier.notify(1)
  notifier.release()
  t.true(await woken, 'the live waiter was notified')
  cond.release()
})

test('a stale holder (stopped past its lease) cannot release the lock another holder took since', async (t) => {
  const { server, ctx, ns, dir } = setup(t, 2_000)
  const c = child(t, dir, server.socket, ns, `
const lock = ctx.AioLock('db')
lock.acquire()
console.log('held')
ctx.AioEvent('go').wait()
try { lock.release(); console.log('released') } catch (e) { console.log(e.name + ': ' + e.message) }
ctx.close()
`, 500)
  await c.line(0)
  // Stopped: its Redis thread stops renewing, the lease runs out, this process takes the lock.
  c.proc.kill('SIGSTOP')
  const lock = ctx.AioLock('db')
  t.true(await lock.coro_acquire(true, LONG))
  c.proc.kill('SIGCONT')
  ctx.AioEvent('go').set()
  t.regex(await c.line(1), /^ValueError: the lock's lease expired/)
  t.is(await c.exited, 0, c.err())
  // Still this process's lock: its release works, and then anyone may take it.
  t.false(redisContext({ url: server.socket, namespace: ns }).AioLock('db').acquire(false))
  lock.release()
  t.true(lock.acquire(false))
  lock.release()
})

test('an aborted or timed-out coro_get takes nothing: every item is got exactly once', async (t) => {
  const { ctx } = setup(t)
  const q = ctx.AioQueue<number>('q')
  for (let round = 0; round < 20; round++) {
    const ac = new AbortController()
    const pending = q.coro_get(true, null, { signal: ac.signal })
    setTimeout(() => ac.abort(), round % 5)
    await t.throwsAsync(pending, { any: true, name: 'AbortError' })
    await t.throwsAsync(q.coro_get(true, round % 3), { instanceOf: Empty })
  }
  for (let i = 0; i < 50; i++) q.put(i)
  const got: number[] = []
  for (let i = 0; i < 50; i++) got.push(await q.coro_get(true, LONG, { signal: new AbortController().signal }))
  t.deepEqual(got, Array.from({ length: 50 }, (_, i) => i))
  t.true(q.empty())
})

test('Redis restarted while a consumer waits: the wait goes on over the new server (a transparent reconnect) or fails with OSError, never hangs', async (t) => {
  const { server, ctx, ns } = setup(t)
  const q = ctx.AioQueue('jobs')
  const waiting = q.coro_get(true, LONG).then(
    (v) => ({ v }),
    (e: Error) => ({ e }),
  )
  await new Promise((r) => setTimeout(r, 100))
  server.child.kill('SIGKILL')
  await new Promise((r) => server.child.once('exit', r))
  // A new server at the same socket (an empty one: no persistence in tests).
  rmSync(server.socket, { force: true })
  const again = spawn('redis-server', ['--port', '0', '--unixsocket', server.socket, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => again.kill('SIGKILL'))
  const other = redisContext({ url: server.socket, namespace: ns })
  t.teardown(() => other.close())
  // Put once the new server answers (its first connection may be refused while it starts).
  const deadline = Date.now() + LONG
  for (;;) {
    try {
      other.AioQueue('jobs').put('after the restart')
      break
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const outcome = await waiting
  t.log('v' in outcome ? 'the wait went on over the new server' : `the wait failed: ${String(outcome.e)}`)
  if ('v' in outcome) t.is(outcome.v, 'after the restart')
  else t.is(outcome.e.name, 'OSError', String(outcome.e))
})

test('Redis down: a call with a timeout ends at its timeout with OSError; what its queued commands take once Redis is back is given back', async (t) => {
  const { server, ctx, ns } = setup(t)
  // What the Redis threads print comes through this process's stderr: each blocking connection
  // without an error listener printed ioredis's "Unhandled error event" per reconnection attempt.
  const printed: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => (printed.push(String(chunk)), write(chunk, ...rest))) as typeof process.stderr.write
  t.teardown(() => (process.stderr.write = write))
  const lock = ctx.AioLock('l')
  const sem = ctx.AioSemaphore('s', 1)
  const q = ctx.AioQueue('q')
  const ev = ctx.AioEvent('e')
  t.false(ev.isSet())
  server.child.kill('SIGKILL')
  await new Promise((r) => server.child.once('exit', r))
  // Before, each waited for ioredis's 20 reconnection attempts: over a minute for a 300 ms timeout.
  const calls: [string, () => unknown][] = [
    ['lock.acquire(true, 300)', () => lock.acquire(true, 300)],
    ['lock.coro_acquire(true, 300)', () => lock.coro_acquire(true, 300)],
    ['lock.acquire(false)', () => lock.acquire(false)],
    ['sem.acquire(true, 300)', () => sem.acquire(true, 300)],
    ['q.get(true, 300)', () => q.get(true, 300)],
    ['q.coro_get(true, 300)', () => q.coro_get(true, 300)],
    ['q.put(1, true, 300)', () => q.put(1, true, 300)],
    ['ev.wait(300)', () => ev.wait(300)],
    ['ev.coro_wait(300)', () => ev.coro_wait(300)],
  ]
  for (const [what, call] of calls) {
    const started = performance.now()
    await t.throwsAsync(async () => call(), { instanceOf: OSError, message: /unreachable/ }, what)
    // A bound far from both: ~0.3 s when it works, over 60 s when it waits out ioredis's retries (a loaded CI took 5 s once).
    t.true(performance.now() - started < 20_000, `${what} took ${Math.round(performance.now() - started)} ms`)
  }
  // A new, empty server at the same socket: the queued acquires run there, and give back what they took.
  rmSync(server.socket, { force: true })
  const again = spawn('redis-server', ['--port', '0', '--unixsocket', server.socket, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => again.kill('SIGKILL'))
  const other = redisContext({ url: server.socket, namespace: ns })
  t.teardown(() => other.close())
  /** Until `free` is true, while a context may still be reconnecting (OSError). */
  const eventually = async (free: () => boolean): Promise<boolean> => {
    const end = Date.now() + LONG
    for (;;) {
      try {
        if (free()) return true
      } catch (error) {
        if (!(error instanceof OSError)) throw error
      }
      if (Date.now() > end) return false
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  t.true(await eventually(() => other.AioLock('l').acquire(false)), 'the lock is free once Redis is back')
  other.AioLock('l').release()
  // The first context works again, and holds nothing it was not told of.
  t.true(await eventually(() => lock.acquire(false)))
  lock.release()
  t.true(sem.acquire(true, LONG))
  sem.release()
  t.deepEqual(printed.filter((p) => p.includes('Unhandled error event')), [])
})

test("Redis down past the context's outage bound: calls without a timeout fail with OSError then, blocking and awaited, and a new call fails at once", async (t) => {
  const { server, ns } = setup(t)
  const ctx = redisContext({ url: server.socket, namespace: ns, outage: 500 })
  t.teardown(() => ctx.close())
  const q = ctx.AioQueue('q')
  const lock = ctx.AioLock('l')
  t.true(lock.acquire())
  const other = redisContext({ url: server.socket, namespace: ns, outage: 500 })
  t.teardown(() => other.close())
  const theirs = other.AioLock('l')
  t.false(theirs.acquire(false))
  // Waiting without a timeout when Redis goes: an awaited get, and an awaited acquire of a held lock.
  const waiting = [q.coro_get(), theirs.coro_acquire()]
  for (const w of waiting) w.catch(() => {})
  server.child.kill('SIGKILL')
  await new Promise((r) => server.child.once('exit', r))
  const started = performance.now()
  for (const w of waiting) await t.throwsAsync(w, { instanceOf: OSError, message: /unreachable for \d+ ms/ })
  // Blocking, no timeout: fails at the bound too (before, ioredis's 20 reconnection tries: ~73 s).
  t.throws(() => q.get(), { instanceOf: OSError, message: /unreachable/ })
  // The bound passed: a new call fails at once.
  const again = performance.now()
  t.throws(() => q.put(1), { instanceOf: OSError, message: /unreachable/ })
  await t.throwsAsync(q.coro_put(1), { instanceOf: OSError, message: /unreachable/ })
  // Bounds far from the ~0.5 s and ~0 s this takes, and from the minute it took before.
  t.true(performance.now() - started < 20_000, `${Math.round(performance.now() - started)} ms`)
  t.true(performance.now() - again < 10_000, `${Math.round(performance.now() - again)} ms`)
  t.throws(() => redisContext({ url: server.socket, outage: -1 }), { instanceOf: TypeError, message: /outage/ })
})

test('a pop whose answer is lost with its connection takes nothing: ioredis sends it again after the reconnect, and the first item goes back to the queue', async (t) => {
  const { server, ns, dir } = setup(t)
  // Between the context and Redis, in a process of its own (this thread blocks in calls): the
  // first answer that carries the marked item is never delivered (the connection drops instead),
  // as when a network fails after Redis answered.
  const via = join(dir, 'proxy.sock')
  const proxy = spawn(process.execPath, ['--input-type=module', '-e', `
    import net from 'node:net'
    let dropped = 0
    net.createServer((client) => {
      const upstream = net.connect(${JSON.stringify(server.socket)})
      for (const s of [client, upstream]) {
        s.on('error', () => {})
        s.on('close', () => (client.destroy(), upstream.destroy()))
      }
      client.pipe(upstream)
      upstream.on('data', (chunk) => {
        if (dropped === 0 && chunk.includes('LOSE-ME')) {
          dropped++
          console.log('dropped')
          client.destroy()
          return
        }
        client.write(chunk)
      })
    }).listen(${JSON.stringify(via)}, () => console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => proxy.kill('SIGKILL'))
  let said = ''
  proxy.stdout!.on('data', (d) => (said += d))
  const told = async (word: string): Promise<void> => {
    const end = Date.now() + LONG
    while (!said.includes(word)) {
      if (Date.now() > end) throw new Error(`the proxy did not say '${word}'`)
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  await told('ready')
  const ctx = redisContext({ url: via, namespace: ns })
  t.teardown(() => ctx.close())
  const q = ctx.AioQueue<string>('q')
  const direct = redisContext({ url: server.socket, namespace: ns })
  t.teardown(() => direct.close())
  const theirs = direct.AioQueue<string>('q')
  const getting = q.coro_get(true, LONG)
  // Until the get waits in Redis (a client blocked in a pop), then two items.
  const admin = new Redis(server.socket)
  t.teardown(() => admin.disconnect())
  const end = Date.now() + LONG
  while (!/cmd=blmove|cmd=blpop/.test(String(await admin.call('CLIENT', 'LIST')))) {
    if (Date.now() > end) throw new Error('the get never waited in Redis')
    await new Promise((r) => setTimeout(r, 5))
  }
  theirs.put('LOSE-ME')
  theirs.put('second')
  const first = await getting
  await told('dropped')
  // Nothing lost, nothing doubled (with LPOP/BLPOP, LOSE-ME was gone and this get waited in vain).
  const next = await q.coro_get(true, 10_000)
  t.deepEqual([first, next].sort(), ['LOSE-ME', 'second'])
  t.is(q.qsize(), 0)
  t.is(theirs.qsize(), 0)
})

test('4 producer and 4 consumer processes, 10,000 items each, consumers aborting some gets: the multiset matches', async (t) => {
  const { server, ctx, ns, dir } = setup(t)
  const N = 10_000
  const consumers = [0, 1, 2, 3].map((k) =>
    child(t, dir, server.socket, ns, `
const q = ctx.AioQueue('work'), done = ctx.AioEvent('producers-done')
const got = []
let aborted = 0
for (let i = 0; ; i++) {
  try {
    // Every 3rd get may be aborted almost at once (mid-wait when the producers are behind): an aborted get takes nothing.
    const signal = i % 3 === 0 ? AbortSignal.timeout(i % 2) : undefined
    got.push(await q.coro_get(true, 200, { signal }))
  } catch (e) {
    if (e.name === 'AbortError' || e.name === 'TimeoutError') { aborted++; continue }
    if (e.name !== 'Empty') throw e
    if (done.isSet() && q.qsize() === 0) break
  }
}
// On the drained queue, aborted waits must end empty-handed.
for (let k = 0; k < 3; k++) {
  try { got.push(await q.coro_get(true, null, { signal: AbortSignal.timeout(5) })) } catch (e) { if (e.name !== 'TimeoutError' && e.name !== 'AbortError') throw e; aborted++ }
}
console.log(JSON.stringify({ got, aborted }))
ctx.close()
`),
  )
  const producers = [0, 1, 2, 3].map((p) =>
    child(t, dir, server.socket, ns, `
const q = ctx.AioQueue('work')
for (let i = 0; i < ${N}; i++) { if (i % 2) q.put('${p}:' + i); else await q.coro_put('${p}:' + i) }
ctx.close()
`),
  )
  for (const p of producers) t.is(await p.exited, 0, p.err())
  ctx.AioEvent('producers-done').set()
  const all: string[] = []
  let aborted = 0
  for (const c of consumers) {
    t.is(await c.exited, 0, c.err())
    const r = JSON.parse(c.lines[0]) as { got: string[]; aborted: number }
    all.push(...r.got)
    aborted += r.aborted
  }
  t.log(`${all.length} items, ${aborted} gets ended by their abort (the others it raced finished first and keep their item)`)
  t.is(all.length, 4 * N)
  t.is(new Set(all).size, 4 * N)
  for (let p = 0; p < 4; p++) for (let i = 0; i < N; i += 997) t.true(all.includes(`${p}:${i}`))
  t.true(aborted >= 12)
})

test('a BoundedSemaphore of 0 refuses a release, as the local one does, and says maxvalue=0', (t) => {
  const { ctx } = setup(t)
  // Before, an initial value of 0 was read back as 1 (`Number(init) || 1`): the release went through.
  const s = ctx.AioBoundedSemaphore('none', 0)
  t.throws(() => s.release(), { instanceOf: ValueError })
  t.is(s.getValue(), 0)
  t.false(s.acquire(false))
  t.is(String(s), 'AioBoundedSemaphore(value=0, maxvalue=0)')
})

test('containers by name: dict (any keys), list, Namespace, and their errors', (t) => {
  const { ctx } = setup(t)
  const d = ctx.dict<unknown, unknown>('d', { a: 1 })
  d.set(2, 'two')
  d.set([1, 2], 'pair')
  t.is(ctx.dict('d').get(2), 'two')
  t.is(d.getitem([1, 2]), 'pair')
  t.throws(() => d.getitem('nope'), { name: 'KeyError' })
  t.deepEqual(d.pop('a'), 1)
  t.is(d.len(), 2)
  const l = ctx.list<number>('l', [3, 1, 2])
  l.insert(0, 9)
  t.deepEqual(l.toArray(), [9, 3, 1, 2])
  t.is(l.pop(1), 3)
  t.throws(() => l.get(10), { name: 'IndexError' })
  l.remove(9)
  t.throws(() => l.remove(42), { instanceOf: ValueError })
  t.deepEqual(l.toArray(), [1, 2])
  const n = ctx.Namespace('n', { x: 1 }) as unknown as Record<string, unknown>
  n.y = 2
  t.is(n.x, 1)
  t.true('y' in n)
  t.throws(() => n.zz, { name: 'AttributeError' })
})

test('bad names and items are refused before anything is sent, naming them', (t) => {
  const { ctx } = setup(t)
  t.throws(() => ctx.AioQueue(''), { instanceOf: TypeError, message: /name must be/ })
  const q = ctx.AioQueue('q')
  t.throws(() => q.put({ f: () => 1 }), { instanceOf: TypeError, message: /item\.f is a function/ })
  t.throws(() => q.put([ctx.AioLock('l')]), { instanceOf: TypeError, message: /item\[0\] is AioLockProxy/ })
  t.throws(() => redisContext({ lease: 5 }), { instanceOf: TypeError, message: /lease/ })
  t.true(q.empty())
})

test('without redis-server the Redis tests fail saying how to install it', (t) => {
  const r = spawn(process.execPath, ['-e', `import(${JSON.stringify(new URL('./context.js', import.meta.url).href)}).then((m) => m.startRedis()).catch((e) => { console.log(e.message); process.exit(3) })`], { env: { ...process.env, PATH: '/nonexistent' } })
  let out = ''
  r.stdout!.on('data', (d) => (out += d))
  return new Promise<void>((resolve) =>
    r.on('exit', (code) => {
      t.is(code, 3)
      t.regex(out, /apt-get install -y redis-server/)
      resolve()
    }),
  )
})

test('a Barrier of 3 parties passes them together, generation after generation; reset() breaks only the waiters of its generation', async (t) => {
  const { server, ctx, ns } = setup(t)
  const others = [0, 1].map(() => redisContext({ url: server.socket, namespace: ns }))
  t.teardown(() => others.forEach((c) => c.close()))
  const parties = [ctx, ...others].map((c) => c.AioBarrier('b', 3))
  for (let round = 0; round < 3; round++) {
    const indexes = await Promise.all(parties.map((b) => b.coro_wait(LONG)))
    t.deepEqual([...indexes].sort(), [0, 1, 2])
  }
  const waiting = [parties[0].coro_wait(LONG), parties[1].coro_wait(LONG)].map((p) => p.then(() => 'passed', (e: Error) => e.name))
  while (parties[2].nWaiting < 2) await new Promise((r) => setTimeout(r, 5))
  parties[2].reset()
  t.deepEqual(await Promise.all(waiting), ['BrokenBarrierError', 'BrokenBarrierError'])
  // Usable again after the reset.
  const again = await Promise.all(parties.map((b) => b.coro_wait(LONG)))
  t.deepEqual([...again].sort(), [0, 1, 2])
})

/** Waits until `n` waiters (at least, or exactly) are queued at `key` (the FIFO queue of a lock's or semaphore's waiters). */
async function queued(server: RedisServer, key: string, n: number, exactly = false): Promise<void> {
  const r = new Redis(server.socket)
  try {
    const end = Date.now() + LONG
    for (let c = await r.zcard(`${key}:queue`); exactly ? c !== n : c < n; c = await r.zcard(`${key}:queue`)) {
      if (Date.now() > end) throw new Error(`${n} waiters were not queued at ${key} in time`)
      await new Promise((res) => setTimeout(res, 5))
    }
  } finally {
    r.disconnect()
  }
}

test('waiters of a Lock, an RLock and a Semaphore are served in order of arrival; one that gives up leaves the queue and is not waited for', async (t) => {
  // A lease far longer than serving the line takes: a waiter that gave up and stayed queued would
  // hold up those behind it until its lease ran out, from the holder's release on.
  const lease = 3 * LONG
  const { server, ctx, ns, dir } = setup(t, lease)
  for (const [type, make] of [['Lock', `ctx.AioLock('l')`], ['RLock', `ctx.AioRLock('l')`], ['Semaphore', `ctx.AioSemaphore('l', 1)`]] as const) {
    const lock = type === 'Lock' ? ctx.AioLock('l') : type === 'RLock' ? ctx.AioRLock('l') : ctx.AioSemaphore('l', 1)
    t.true(lock.acquire(false))
    const order = ctx.list(`order-${type}`)
    const waiters: Child[] = []
    for (let i = 0; i < 5; i++) {
      // The third gives up (aborts) once told, while the others still wait behind the holder. No
      // timeout: the line forms at this machine's pace (a loaded one takes seconds to start each
      // process, and 5 of them once took longer than the first waiter's 30 s: it had left the line).
      // Each one served says when, to measure from the release.
      waiters.push(child(t, dir, server.socket, ns, `
const lock = ${make}
const giveUp = new AbortController()
if (${i} === 2) ctx.AioEvent('give-up-${type}').coro_wait().then(() => giveUp.abort())
const got = await lock.coro_acquire(true, null, { signal: giveUp.signal }).catch((e) => e.name)
if (got === true) { ctx.list('order-${type}').append([${i}, Date.now()]); lock.release() }
console.log(String(got))
ctx.close()
`, lease))
      await queued(server, `${ns}:${type}:l`, i < 3 ? i + 1 : i)
      // The one that gave up has left the queue before the next comes.
      if (i === 2) {
        ctx.AioEvent(`give-up-${type}`).set()
        t.is(await waiters[2].line(0), 'AbortError', type)
        await queued(server, `${ns}:${type}:l`, 2, true)
      }
    }
    const released = Date.now()
    lock.release()
    for (const [i, w] of waiters.entries()) t.is(await w.exited, 0, `${type} ${i}: ${w.err()}`)
    const served = order.toArray() as [number, number][]
    t.deepEqual(
      served.map(([i]) => i),
      [0, 1, 3, 4],
      type,
    )
    // Not waited for: the four were served one after another from the release, in a moment, not
    // after the lease of the one that gave up (its clocks are this machine's).
    const took = Math.max(...served.map(([, at]) => at)) - released
    t.true(took < LONG, `${type}: the last waiter was served ${took} ms after the release`)
  }
})

test('a Semaphore released by 2 serves its first two waiters, in order; a queued waiter SIGKILLed is passed over once its lease runs out', async (t) => {
  const { server, ctx, ns, dir } = setup(t, 1_000)
  const s = ctx.AioSemaphore('s', 0)
  const waiters: Child[] = []
  for (let i = 0; i < 5; i++) {
    // No timeout: the line forms at this machine's pace (a waiter that timed out meanwhile left it).
    waiters.push(child(t, dir, server.socket, ns, `
const s = ctx.AioSemaphore('s', 0)
if (await s.coro_acquire(true, null)) ctx.list('order').append(${i})
console.log('got')
setInterval(() => {}, 1000)
`, 1_000))
    await queued(server, `${ns}:Semaphore:s`, i + 1)
  }
  // The first in line dies: its place goes once its lease runs out.
  waiters[0].proc.kill('SIGKILL')
  await waiters[0].exited
  s.release(2)
  await waiters[1].line(0)
  await waiters[2].line(0)
  t.deepEqual(new Set(ctx.list('order').toArray() as number[]), new Set([1, 2]))
  s.release(2)
  await waiters[3].line(0)
  await waiters[4].line(0)
  t.deepEqual((ctx.list('order').toArray() as number[]).slice(2).sort(), [3, 4])
})

test('a notify(1) spent on a waiter that had just died (its lease still running) is passed on to the next live waiter once the lease runs out', async (t) => {
  const lease = 3_000
  const { server, ctx, ns, dir } = setup(t, lease)
  const cond = ctx.AioCondition('c')
  const parked = (n: number): Promise<void> => parkedOn(cond, n)
  const waiter = (): Child =>
    child(t, dir, server.socket, ns, `
const cond = ctx.AioCondition('c')
cond.acquire()
console.log(String(cond.wait(${LONG})))
cond.release()
ctx.close()
`, lease)
  // First in line, then killed: notify(1) reaches it while its lease runs, as it would a live one.
  const first = waiter()
  await parked(1)
  const second = waiter()
  await parked(2)
  first.proc.kill('SIGKILL')
  await first.exited
  t.true(await cond.coro_acquire(true, LONG))
  cond.notify(1)
  cond.release()
  // Before, the wake-up went with the dead waiter and the live one slept until its timeout (false).
  t.is(await second.line(0), 'true')
  t.is(await second.exited, 0, second.err())
})
