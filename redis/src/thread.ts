// The Redis thread of a calling thread: its ioredis clients, the leases it renews, and the
// operations of ops.ts, for blocking calls (the caller sleeps on a word until the answer is on its
// port) and awaitable ones alike. Leases are renewed here, in a thread that never blocks, so a
// caller blocked in a long call keeps its locks; when its process dies, renewals stop and Redis
// frees them within the lease.

import { randomUUID } from 'node:crypto'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { deserialize, serialize } from 'node:v8'
import { Redis } from 'ioredis'
import { OpError, Packed, SCRIPTS, TYPES, run, type Env, type Listener, type Op } from './ops.js'
import { POOL } from './pool-ops.js'

TYPES.Pool = POOL

interface Setup {
  url: string
  namespace: string
  leaseMs: number
  /** How long a call waits for an unreachable Redis to come back before it fails, in ms. */
  outageMs: number
  /** Word 0: set to 1 when an answer for a blocking call is on `sync`. */
  flag: SharedArrayBuffer
  sync: MessagePort
  async: MessagePort
}

/** Arguments and values cross between the threads as V8's serialization, so a Buffer stays a Buffer. */
type Request = Omit<Op, 'args'> & { id: number; args: Uint8Array }
export type Reply = { id: number; ok: true; value: Uint8Array } | { id: number; ok: false; error: { name: string; message: string } }

const setup = workerData as Setup
const flag = new Int32Array(setup.flag)
// Word 1: this thread ended (a crash included): a caller blocked on word 0 wakes and says so.
process.on('exit', () => {
  Atomics.store(flag, 1, 1)
  Atomics.notify(flag, 0)
})
const me = randomUUID()

// A command waits through a reconnect (a restarted Redis): ioredis resends it. A call fails once
// Redis has been unreachable for setup.outageMs (watchOutage), long before ioredis's 20 tries.
const options = { lazyConnect: false, enableAutoPipelining: true } as const
const r = new Redis(setup.url, options)
for (const [name, s] of Object.entries(SCRIPTS)) r.defineCommand(name, { numberOfKeys: s.keys, lua: s.lua })
const sub = new Redis(setup.url, { ...options, enableAutoPipelining: false })
const idle: Redis[] = []
/** A connection whose errors are told by its commands: without a listener ioredis prints each reconnection failure. */
const quiet = (c: Redis): Redis => c.on('error', () => {})
let clientError: Error | undefined
// Down from a lost or refused connection until the next 'ready' (not while the first one is made).
let down = false
/** When the connection went down (performance.now()), for calls that come while it stays down. */
let downSince = 0
/** Fails every call in flight: Redis has been unreachable for setup.outageMs. */
let outageTimer: ReturnType<typeof setTimeout> | undefined
const inFlight = new Set<(e: Error) => void>()
r.on('error', (e) => (clientError = e))
r.on('close', () => {
  if (down) return
  down = true
  downSince = performance.now()
  outageTimer = setTimeout(() => {
    for (const fail of [...inFlight]) fail(outageError())
  }, setup.outageMs)
})
r.on('ready', () => {
  down = false
  clearTimeout(outageTimer)
})
const outageError = (): Unreachable => new Unreachable(`unreachable for ${Math.round(performance.now() - downSince)} ms (connection ${r.status}; the context's outage option is ${setup.outageMs} ms)`)
sub.on('error', () => {})

const channels = new Map<string, Set<() => void>>()
sub.on('message', (channel: string) => {
  for (const wake of channels.get(channel) ?? []) wake()
})

async function listen(channel: string): Promise<Listener> {
  let wake: () => void = () => {}
  const waiters = channels.get(channel) ?? new Set<() => void>()
  const first = waiters.size === 0
  channels.set(channel, waiters)
  let pending = false
  const mine = (): void => {
    pending = true
    wake()
  }
  waiters.add(mine)
  if (first) await sub.subscribe(channel)
  return {
    next(ms, signal) {
      if (pending) {
        pending = false
        return Promise.resolve()
      }
      return new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          pending = false
          wake = () => {}
          resolve()
        }
        const timer = setTimeout(done, ms)
        signal.addEventListener('abort', done, { once: true })
        wake = done
      })
    },
    close() {
      waiters.delete(mine)
      if (waiters.size === 0) {
        channels.delete(channel)
        void sub.unsubscribe(channel).catch(() => {})
      }
    },
  }
}

const renewals = new Map<string, ReturnType<typeof setInterval>>()

function envFor(signal: AbortSignal, abortable: boolean, noteDeadline: (deadline: number) => void, gone: AbortSignal): Env {
  return {
    noteDeadline,
    gone,
    r,
    ns: setup.namespace,
    leaseMs: setup.leaseMs,
    me,
    signal,
    abortable,
    blocking: () => idle.pop() ?? quiet(r.duplicate()),
    releaseBlocking: (c) => {
      if (idle.length < 4) idle.push(c)
      else c.disconnect()
    },
    listen,
    renew(key, renew) {
      clearInterval(renewals.get(key))
      const timer = setInterval(() => {
        void renew()
          .then((still) => {
            if (!still) {
              clearInterval(timer)
              renewals.delete(key)
            }
          })
          .catch(() => {})
      }, Math.max(10, Math.floor(setup.leaseMs / 3)))
      renewals.set(key, timer)
    },
    stopRenewing(key) {
      clearInterval(renewals.get(key))
      renewals.delete(key)
    },
  }
}

const aborts = new Map<number, AbortController>()

/** How often a call past its deadline looks whether Redis is back, in ms. */
const OUTAGE_CHECK_MS = 50

class Unreachable extends Error {}

/**
 * Fails a call while Redis is unreachable, at its deadline if it has one, and in any case once
 * Redis has been unreachable for setup.outageMs: ioredis would keep its commands for 20
 * reconnection attempts (over a minute) before failing them. The call goes on in the background
 * (its commands are queued), aborted, with `gone` telling it to give back what it takes.
 */
function watchOutage(gone: AbortController): { note(deadline: number): void; failed: Promise<never>; stop(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined
  let noted = false
  let reject: (e: Error) => void = () => {}
  const failed = new Promise<never>((_, no) => (reject = no))
  failed.catch(() => {})
  const fail = (e: Error): void => {
    inFlight.delete(fail)
    gone.abort()
    reject(e)
  }
  const check = (): void => {
    if (!down) {
      timer = setTimeout(check, OUTAGE_CHECK_MS)
      return
    }
    fail(new Unreachable(`unreachable past the call's timeout (connection ${r.status})`))
  }
  // A call that comes while Redis has been down for the whole outage bound fails at once.
  if (down && performance.now() - downSince >= setup.outageMs) queueMicrotask(() => fail(outageError()))
  else inFlight.add(fail)
  return {
    note(deadline) {
      if (noted) return
      noted = true
      if (deadline !== Infinity) timer = setTimeout(check, Math.max(0, deadline - performance.now()))
    },
    failed,
    stop: () => {
      clearTimeout(timer)
      inFlight.delete(fail)
    },
  }
}

async function answer(req: Request): Promise<Reply> {
  const controller = new AbortController()
  aborts.set(req.id, controller)
  const gone = new AbortController()
  const outage = watchOutage(gone)
  try {
    const op: Op = { ...req, args: deserialize(req.args) as unknown[] }
    const work = run(envFor(controller.signal, req.abortable, outage.note, gone.signal), op)
    work.catch(() => {})
    const result = await Promise.race([work, outage.failed])
    return { id: req.id, ok: true, value: result instanceof Packed ? result.bytes : serialize(result) }
  } catch (error) {
    if (error instanceof Unreachable) controller.abort()
    else if (error instanceof OpError) return { id: req.id, ok: false, error: { name: error.kind, message: error.message } }
    else if (controller.signal.aborted) return { id: req.id, ok: false, error: { name: 'AbortError', message: 'aborted' } }
    const e = error as Error
    // A connection that is down: the library's OSError, with what ioredis said.
    return { id: req.id, ok: false, error: { name: 'OSError', message: `Redis at ${setup.url}: ${e?.message ?? String(error)}${clientError && clientError !== e ? ` (${clientError.message})` : ''}` } }
  } finally {
    outage.stop()
    aborts.delete(req.id)
  }
}

setup.sync.on('message', (req: Request) => {
  void answer(req).then((reply) => {
    setup.sync.postMessage(reply)
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
  })
})

setup.async.on('message', (m: Request | { cancel: number }) => {
  if ('cancel' in m) {
    aborts.get(m.cancel)?.abort()
    return
  }
  void answer(m).then((reply) => setup.async.postMessage(reply))
})

parentPort!.on('message', (m: { close?: boolean }) => {
  if (!m.close) return
  for (const t of renewals.values()) clearInterval(t)
  for (const c of [r, sub, ...idle]) c.disconnect()
  setup.sync.close()
  setup.async.close()
})
