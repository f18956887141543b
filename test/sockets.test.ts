// Listener and Client: Node with Node over TCP and Unix sockets, Node with CPython (3.11's legacy
// HMAC-MD5 handshake and 3.12+/3.13's {digest} one), wrong keys, and hostile peers.
import test from 'ava'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { AioArray, AioClient, AioListener, wait, coro_wait, AioPipe } from '../generated/index.generated.js'
import { LONG, STYLES, call, joined, python, pythons, start } from './helpers.js'

const TARGETS = new URL('./targets.js', import.meta.url)

for (const style of STYLES) {
  for (const kind of ['tcp', 'unix'] as const) {
    test(`Node ⇄ Node over ${kind}, with an authkey: accept, then messages both ways (${style})`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'aio-sock-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      const address = kind === 'tcp' ? (['127.0.0.1', 0] as const) : join(dir, 'sock')
      const listener = new AioListener(address, { authkey: 'secret' })
      t.teardown(() => listener.close())
      const outcome = new AioArray('c', 64)
      const p = start(t, { target: { module: TARGETS, name: 'echoClient' }, args: [listener.address, 'secret', 3, outcome] })
      const conn = await call<any>(style, listener, 'accept')
      for (const word of ['a', 'bc', 'déf']) {
        await call(style, conn, 'sendBytes', Buffer.from(word))
        t.is((await call<Buffer>(style, conn, 'recvBytes')).toString(), word.toUpperCase())
      }
      await t.throwsAsync(async () => call(style, conn, 'recvBytes'), { name: 'EOFError' })
      joined(t, p)
      t.is(outcome.value.toString(), 'ok')
      t.truthy(listener.lastAccepted)
    })
  }

  test(`Node ⇄ Node without an authkey: accept, then messages both ways (${style})`, async (t) => {
    const listener = new AioListener(['127.0.0.1', 0])
    t.teardown(() => listener.close())
    const outcome = new AioArray('c', 64)
    const p = start(t, { target: { module: TARGETS, name: 'echoClient' }, args: [listener.address, null, 2, outcome] })
    const conn = await call<any>(style, listener, 'accept')
    for (const word of ['plain', 'text']) {
      await call(style, conn, 'sendBytes', Buffer.from(word))
      t.is((await call<Buffer>(style, conn, 'recvBytes')).toString(), word.toUpperCase())
    }
    joined(t, p)
    t.is(outcome.value.toString(), 'ok')
  })

  test(`a client with a wrong authkey gets AuthenticationError; the listener keeps serving (${style})`, async (t) => {
    const listener = new AioListener(['127.0.0.1', 0], { authkey: 'right' })
    t.teardown(() => listener.close())
    const bad = new AioArray('c', 64)
    const p1 = start(t, { target: { module: TARGETS, name: 'echoClient' }, args: [listener.address, 'wrong', 0, bad] })
    await t.throwsAsync(async () => call(style, listener, 'accept'), { name: 'AuthenticationError', message: 'digest received was wrong' })
    joined(t, p1)
    t.is(bad.value.toString(), 'AuthenticationError: digest sent was rejected')
    const good = new AioArray('c', 64)
    const p2 = start(t, { target: { module: TARGETS, name: 'echoClient' }, args: [listener.address, 'right', 1, good] })
    const conn = await call<any>(style, listener, 'accept')
    conn.sendBytes(Buffer.from('x'))
    t.is(conn.recvBytes(null).toString(), 'X')
    joined(t, p2)
    t.is(good.value.toString(), 'ok')
  })
}

test('connecting where nothing listens fails with a clear error', async (t) => {
  const l = new AioListener()
  const address = l.address as [string, number]
  l.close()
  await new Promise((r) => setTimeout(r, 50))
  await t.throwsAsync(AioClient.coro(address), { name: 'OSError', message: /ECONNREFUSED/ })
  t.throws(() => AioClient(address), { name: 'OSError', message: /ECONNREFUSED/ })
})

test('wait() returns the connections that are ready', async (t) => {
  const [a, b] = AioPipe()
  const [c, d] = AioPipe()
  t.deepEqual(wait([b, d], 0), [])
  a.send(1)
  t.deepEqual(wait([b, d], LONG), [b])
  c.close()
  t.deepEqual(await coro_wait([b, d], LONG), [b, d])
  const t0 = performance.now()
  b.recv()
  t.deepEqual(wait([b], 100), [])
  t.true(performance.now() - t0 >= 90)
})

test('a blocking wait() on several connections wakes for a message on the last one, sent soon or late while it sleeps', async (t) => {
  const [request, requested] = AioPipe()
  const ends = [AioPipe(false), AioPipe(false), AioPipe(false)]
  const readers = ends.map(([r]) => r)
  const p = start(t, {
    // Answers each request on the last pipe after the ms it names; a negative one ends it.
    target: (req: { recv(): number }, out: { send(x: number): void }) => {
      for (;;) {
        const ms = req.recv()
        if (ms < 0) return
        if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
        out.send(ms)
      }
    },
    args: [requested, ends[2][1]],
  })
  // At once (the first look), after a few steps of the growing sleep, and past its cap of 5 ms.
  for (const ms of [0, 0, 3, 30, 300]) {
    request.send(ms)
    t.deepEqual(wait(readers, LONG), [readers[2]], `an answer after ${ms} ms`)
    t.is(readers[2].recv(), ms)
  }
  request.send(-1)
  joined(t, p)
})

test('wait() and coro_wait() on connections none of which can receive sleep out their timeout, as Python\'s do (they returned [] at once); one listed twice raises', async (t) => {
  const [r, w] = AioPipe(false)
  t.teardown(() => [r, w].forEach((x) => x.close()))
  for (const [list, name] of [[[w], 'a send-only end'], [[], 'no connection']] as const) {
    let t0 = performance.now()
    t.deepEqual(wait(list as never, 150), [], name)
    t.true(performance.now() - t0 >= 140, `wait() on ${name} returned after ${performance.now() - t0} ms`)
    t0 = performance.now()
    t.deepEqual(await coro_wait(list as never, 150), [], name)
    t.true(performance.now() - t0 >= 140, `coro_wait() on ${name} returned after ${performance.now() - t0} ms`)
  }
  // Without a timeout it waits until aborted.
  const c = new AbortController()
  const waiting = coro_wait([w], null, { signal: c.signal })
  setTimeout(() => c.abort(new Error('expected in a test: abort')), 50)
  await t.throwsAsync(waiting, { message: 'expected in a test: abort' })
  const [a, b] = AioPipe()
  t.teardown(() => [a, b].forEach((x) => x.close()))
  t.throws(() => wait([a, b, a], 0), { name: 'ValueError', message: /connections\[2\] is connections\[0\] again/ })
  await t.throwsAsync(coro_wait([b, b], 0), { name: 'ValueError', message: /connections\[1\] is connections\[0\] again/ })
})

test('wait() and coro_wait() on a closed connection raise OSError, as Python does (they returned [], as if nothing came)', async (t) => {
  const [a, b] = AioPipe()
  const [c, d] = AioPipe()
  t.teardown(() => [a, c, d].forEach((x) => x.close()))
  a.send('ready') // what was ready does not matter once the end is closed
  b.close()
  t.throws(() => wait([d, b], 0), { name: 'OSError', message: /handle is closed \(connections\[1\]\)/ })
  await t.throwsAsync(coro_wait([b], LONG), { name: 'OSError', message: /handle is closed/ })
  // The other connections are untouched.
  c.send(1)
  t.deepEqual(wait([d], LONG), [d])
})

// Serial: it watches every Buffer.allocUnsafe of this worker.
test.serial('a frame whose header claims 60 MiB holds about what has come of it, not 60 MiB; messages in random parts come back whole', async (t) => {
  const { frameHeader, messageReader } = await import('../runtime/ipc/framing.js')
  const sizes: number[] = []
  const original = Buffer.allocUnsafe
  Buffer.allocUnsafe = ((n: number) => {
    sizes.push(n)
    return original(n)
  }) as typeof Buffer.allocUnsafe
  const got: Buffer[] = []
  try {
    const reader = messageReader(64 << 20, (b) => got.push(b), () => t.fail('refused'))
    reader.push(Buffer.concat([frameHeader(60 << 20), Buffer.alloc(1000, 7)]))
    for (let i = 0; i < 10; i++) reader.push(Buffer.alloc(1000, 7))
  } finally {
    Buffer.allocUnsafe = original
  }
  t.is(got.length, 0)
  t.true(Math.max(0, ...sizes) <= 128 * 1024, `allocated ${Math.max(...sizes)} bytes for 11,000 received`)
  // Whole and in order, whatever the parts: 1 byte to 200 KB, a header split across two of them.
  let seed = 7
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n)
  const messages = [0, 1, 5, 70_000, 1 << 20, 3].map((n) => Buffer.from(Array.from({ length: n }, () => rand(256))))
  const stream = Buffer.concat(messages.flatMap((m) => [frameHeader(m.length), m]))
  const out: Buffer[] = []
  const reader = messageReader(64 << 20, (b) => out.push(Buffer.from(b)), () => t.fail('refused'))
  for (let at = 0; at < stream.length; ) {
    const n = 1 + rand(rand(2) ? 7 : 200_000)
    reader.push(stream.subarray(at, at + n))
    at += n
  }
  t.deepEqual(out, messages)
})

// Serial: it watches every Atomics.waitAsync of this worker, and no other test may run meanwhile.
test.serial('coro_wait on several connections sleeps on all of them at once: none is looked at every few ms', async (t) => {
  const [a, b] = AioPipe()
  const [c, d] = AioPipe()
  const sleeps: unknown[] = []
  const original = Atomics.waitAsync
  Atomics.waitAsync = ((...args: Parameters<typeof Atomics.waitAsync>) => {
    sleeps.push(args[3])
    return original(...args)
  }) as typeof Atomics.waitAsync
  t.teardown(() => {
    Atomics.waitAsync = original
  })
  const waiting = coro_wait([b, d], LONG)
  // A message for the second connection, once the wait sleeps.
  setTimeout(() => c.send('late'), 30)
  t.deepEqual(await waiting, [d])
  Atomics.waitAsync = original
  t.true(sleeps.length > 0)
  // Each sleep was as long as the timeout left; a wait that slept on the first connection alone
  // would have looked at the second every 5 ms.
  t.false(sleeps.some((ms) => typeof ms === 'number' && ms <= 5), JSON.stringify(sleeps))
  t.deepEqual(await coro_wait([b, d], 0), [d])
  a.send(1)
  t.deepEqual(await coro_wait([b, d], LONG), [b, d])
  for (const conn of [a, b, c, d]) conn.close()
})

// Found by an outside attack: two coro_wait calls sharing a quiet connection, once one of them
// woke (a timeout, an abort), woke each other back for ever: each cleaned up its waits with a
// notify of all, which woke the other's. A core ran at 100% until a message came.
test.serial('coro_wait calls that share a quiet connection do not wake each other back and forth', async (t) => {
  const [a, b] = AioPipe()
  const others = [AioPipe(), AioPipe()]
  const waiting = others.map(([o]) => coro_wait([a, o], null))
  let waits = 0
  const original = Atomics.waitAsync
  Atomics.waitAsync = ((...args: Parameters<typeof Atomics.waitAsync>) => {
    waits++
    return original(...args)
  }) as typeof Atomics.waitAsync
  t.teardown(() => {
    Atomics.waitAsync = original
  })
  t.deepEqual(await coro_wait([a], 1), []) // times out, and takes its wait off `a`'s word
  const after = waits
  for (let turn = 0; turn < 200; turn++) await new Promise((r) => setImmediate(r))
  Atomics.waitAsync = original
  // Woken once each by that clean-up, the two calls wait again: a few waits, not one per turn.
  t.true(waits - after <= 6, `${waits - after} waits in 200 turns of the event loop`)
  b.send('go')
  t.deepEqual((await Promise.all(waiting)).map((r) => r.length), [1, 1])
  for (const conn of [a, b, ...others.flat()]) conn.close()
})

// --- hostile peers ------------------------------------------------------------------------------

function rawSend(address: [string, number], bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = net.connect({ host: address[0], port: address[1] }, () => s.end(bytes))
    s.on('data', (d) => chunks.push(d))
    s.on('error', () => {})
    s.on('close', () => resolve(Buffer.concat(chunks)))
    s.setTimeout(LONG, () => s.destroy())
  })
}

const frame = (payload: Buffer): Buffer => {
  const h = Buffer.alloc(4)
  h.writeInt32BE(payload.length, 0)
  return Buffer.concat([h, payload])
}

test('hostile peers are cut off with clear errors, without allocating what they claim; the listener keeps serving', async (t) => {
  const listener = new AioListener(['127.0.0.1', 0], { authkey: 'k', maxMessageSize: 1 << 20 })
  t.teardown(() => listener.close())
  const address = listener.address as [string, number]
  const before = process.memoryUsage().rss
  const cases: [string, Buffer, RegExp][] = [
    ['a length prefix of 2^31-1', Buffer.from('7fffffff', 'hex'), /cut off/],
    ['a -1 escape claiming 2^40 bytes', Buffer.from('ffffffff0000010000000000', 'hex'), /cut off/],
    ['a negative length', Buffer.from('fffffffe', 'hex'), /cut off/],
    ['a truncated frame', Buffer.from('00000010abcd', 'hex'), /cut off|end of file/],
    ['garbage before the handshake', Buffer.from('GET / HTTP/1.1\r\n\r\n'), /cut off|AuthenticationError|digest|bad message/],
    ['a response longer than 256 bytes', Buffer.concat([frame(Buffer.alloc(300))]), /bad message length|cut off/],
    // A peer that closes at once may be gone before the server's next send: then the send fails.
    ['a wrong response', frame(Buffer.alloc(40)), /digest received was wrong|cut off/],
    ['nothing at all', Buffer.alloc(0), /EOF|end of file|closed by its peer|cut off/],
  ]
  for (const [what, bytes, message] of cases) {
    const peer = rawSend(address, bytes)
    const error = await listener.coro_accept({ signal: AbortSignal.timeout(LONG) }).then(() => undefined, (e: Error) => e)
    t.truthy(error, `${what}: accept threw`)
    t.regex(`${error?.name}: ${error?.message}`, message, what)
    await peer
  }
  t.true(process.memoryUsage().rss - before < 256 * 1024 * 1024, 'no claimed size was allocated')
  const good = new AioArray('c', 64)
  const p = start(t, { target: { module: TARGETS, name: 'echoClient' }, args: [address, 'k', 1, good] })
  const conn = await listener.coro_accept()
  await conn.coro_sendBytes(Buffer.from('still here'))
  t.is((await conn.coro_recvBytes()).toString(), 'STILL HERE')
  joined(t, p)
})

test('fuzz: 200 rounds of random bytes and random frame sequences; the listener stays up and serves a good client', async (t) => {
  const listener = new AioListener(['127.0.0.1', 0], { authkey: 'k', maxMessageSize: 1 << 16 })
  t.teardown(() => listener.close())
  const address = listener.address as [string, number]
  let seed = 12345
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n)
  for (let round = 0; round < 200; round++) {
    let bytes: Buffer
    if (round % 2 === 0) bytes = randomBytes(rand(600))
    else {
      const frames = Array.from({ length: 1 + rand(4) }, () => {
        const payload = randomBytes(rand(300))
        const h = Buffer.alloc(4)
        h.writeInt32BE(rand(4) === 0 ? rand(0x7fffffff) : payload.length, 0)
        return Buffer.concat([h, payload.subarray(0, rand(payload.length + 1))])
      })
      bytes = Buffer.concat(frames)
    }
    const peer = rawSend(address, bytes)
    const error = await listener.coro_accept({ signal: AbortSignal.timeout(LONG) }).then(() => undefined, (e: Error) => e)
    t.truthy(error, `round ${round}: a random peer never passes the handshake`)
    t.not(error?.name, 'TimeoutError', `round ${round}: accept hung on ${bytes.length} random bytes`)
    await peer
  }
  const good = new AioArray('c', 64)
  const p = start(t, { target: { module: TARGETS, name: 'echoClient' }, args: [address, 'k', 1, good] })
  const conn = await listener.coro_accept()
  conn.sendBytes(Buffer.from('ok?'))
  t.is((await conn.coro_recvBytes()).toString(), 'OK?')
  joined(t, p)
})

// --- CPython as the peer ------------------------------------------------------------------------

for (const [version, env] of pythons()) {
  const run = env.SKIP ? test.skip : test
  if (env.SKIP) console.log(`# python ${version} not found: its interop tests are skipped`)
  run(`Python ${version} Listener ⇄ Node AioClient: handshake and bytes both ways; a wrong key is refused`, async (t) => {
    const script = `
import sys
from multiprocessing.connection import Listener
with Listener(('127.0.0.1', 0), authkey=b'pykey') as l:
    print(l.address[1], flush=True)
    for key in ('right', 'wrong'):
        try:
            c = l.accept()
        except Exception as e:
            print('refused', type(e).__name__, flush=True)
            continue
        m = c.recv_bytes()
        c.send_bytes(m[::-1] + b'|' + str(len(m)).encode())
        c.send_bytes(b'x' * 100000)
        c.close()
`
    const child = spawn('python3', ['-c', script], { env, timeout: LONG })
    t.teardown(() => child.kill())
    // Listened for from the start: the child may be gone before the test gets to wait for it.
    const closed = new Promise((r) => child.on('close', r))
    // Lines from the text so far: a line may come in two chunks ('refused' and ' AuthenticationError' did).
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const lines = (): string[] => out.split('\n').slice(0, -1)
    while (lines().length === 0) await new Promise((r) => setTimeout(r, 10))
    const port = Number(lines()[0])
    const conn = await AioClient.coro(['127.0.0.1', port], { authkey: 'pykey' })
    await conn.coro_sendBytes(Buffer.from('hello'))
    t.is((await conn.coro_recvBytes()).toString(), 'olleh|5')
    t.is((await conn.coro_recvBytes()).length, 100000)
    conn.close()
    await t.throwsAsync(AioClient.coro(['127.0.0.1', port], { authkey: 'nope' }), { name: 'AuthenticationError', message: 'digest sent was rejected' })
    await closed
    t.true(lines().includes('refused AuthenticationError'), out)
  })

  run(`Node AioListener ⇄ Python ${version} Client: handshake and bytes both ways; a wrong key is refused`, async (t) => {
    const listener = new AioListener(['127.0.0.1', 0], { authkey: 'nodekey' })
    t.teardown(() => listener.close())
    const port = (listener.address as [string, number])[1]
    const script = `
from multiprocessing.connection import Client
from multiprocessing import AuthenticationError
c = Client(('127.0.0.1', ${port}), authkey=b'nodekey')
c.send_bytes(b'from python')
print(c.recv_bytes().decode(), flush=True)
c.close()
try:
    Client(('127.0.0.1', ${port}), authkey=b'bad')
except AuthenticationError as e:
    print('refused', e, flush=True)
`
    const py = python(env, script)
    const conn = await listener.coro_accept()
    t.is((await conn.coro_recvBytes()).toString(), 'from python')
    await conn.coro_sendBytes(Buffer.from('from node'))
    await t.throwsAsync(listener.coro_accept(), { name: 'AuthenticationError' })
    const r = await py
    t.is(r.code, 0, r.err)
    t.regex(r.out, /from node\nrefused digest sent was rejected/)
  })
}

/** This process's open fds (the I/O thread's sockets among them). */
const openFds = (): number => readdirSync('/proc/self/fd').length

/** Resolves with the fd count once it holds still, or after LONG ms. */
async function settledFds(): Promise<number> {
  let last = -1
  for (let same = 0, end = performance.now() + LONG; same < 5 && performance.now() < end; ) {
    await new Promise((r) => setTimeout(r, 20))
    const n = openFds()
    same = n === last ? same + 1 : 0
    last = n
  }
  return last
}

// Serial: it counts this process's fds.
test.serial('a listener fed 300 over-long handshake replies and 50 silent connections still serves a good Python client; its fds come back', async (t) => {
  const listener = new AioListener(['127.0.0.1', 0], { authkey: 'key' })
  t.teardown(() => listener.close())
  const [host, port] = listener.address as [string, number]
  const base = await settledFds()
  const dial = (): Promise<net.Socket> => new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s))
    s.on('error', reject)
  })
  const silent = await Promise.all(Array.from({ length: 50 }, dial))
  t.teardown(() => silent.forEach((s) => s.destroy()))
  // Each answers the challenge with a 100 kB frame: the listener must refuse it and close the socket.
  let closedByListener = 0
  for (let i = 0; i < 300; i++) {
    const s = await dial()
    const closed = new Promise<void>((resolve) => s.on('close', () => resolve()))
    s.once('data', () => {
      const head = Buffer.alloc(4)
      head.writeInt32BE(100_000)
      s.write(Buffer.concat([head, Buffer.alloc(100_000)]))
    })
    s.on('error', () => {})
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      s.destroy()
    }, 5000)
    await closed
    clearTimeout(timer)
    if (!timedOut) closedByListener++
    else if (i - closedByListener > 2) break // leaking: no need to wait out the rest
  }
  t.is(closedByListener, 300, 'the listener closed every over-long handshake within 5 s')
  const started = performance.now()
  const py = spawn('python3', ['-c', `
from multiprocessing.connection import Client
c = Client(('${host}', ${port}), authkey=b'key')
c.send_bytes(b'good client')
print(c.recv_bytes().decode())
`], { timeout: LONG })
  let out = ''
  py.stdout.on('data', (d) => (out += d))
  const pyClosed = new Promise((r) => py.on('close', r))
  // As with Python's Listener, each failed handshake makes one accept() raise: a server loops.
  let conn: any
  let failures = 0
  while (!conn) {
    try {
      conn = await listener.coro_accept({ signal: AbortSignal.timeout(LONG) })
    } catch (e) {
      if ((e as Error).name === 'AbortError' || (e as Error).name === 'TimeoutError') throw e
      failures++
    }
  }
  t.is(failures, 300, 'one accept() error per over-long handshake, none for the silent peers')
  t.is((await conn.coro_recvBytes()).toString(), 'good client')
  conn.sendBytes(Buffer.from('served'))
  const served = performance.now() - started
  await pyClosed
  t.is(out, 'served\n', `served in ${Math.round(served)} ms with 50 silent peers connected`)
  conn.close()
  for (const s of silent) s.destroy()
  t.true((await settledFds()) - base <= 4, 'fds back to the baseline')
})
