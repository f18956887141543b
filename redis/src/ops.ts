// What each Redis-backed object does, run in the Redis thread of a process (thread.ts) with its
// ioredis clients. Every object lives under `<namespace>:<type>:<name>`, so processes on any
// machine that name it meet at it. State changes that must be atomic are Lua scripts; waits are
// woken by pub/sub or by a blocking pop, and also look again on a bounded period, so a wake-up lost
// with a connection costs time, never correctness.
//
// Failure semantics (README.md of this package): queue items move with RPUSH and (B)LMOVE to a
// get's own list, so an aborted or timed-out get takes nothing, nor does a pop whose answer was lost; locks and semaphore slots are leases renewed here while
// their holder's thread lives, freed by Redis when it dies; a lock's value is its holder's token,
// so a stale holder cannot release another's lock; each acquisition of a lock gets a fencing number.

import { randomUUID } from 'node:crypto'
import { deserialize, serialize } from 'node:v8'
import type { Redis } from 'ioredis'

/** An error for the caller, rebuilt there as the library's class of that name. */
export class OpError extends Error {
  constructor(readonly kind: string, message: string) {
    super(message)
  }
}

export interface Op {
  typeid: string
  name: string
  method: string
  args: unknown[]
  /** The caller may abort: waits go in slices and look at the signal between them. */
  abortable: boolean
}

/** How long one slice of an abortable wait asks Redis to wait. */
const SLICE_MS = 100
/** The longest a wait sleeps before it looks at its object again (a lease that expired, a lost message). */
const RECHECK_MS = 1000

export interface Env {
  readonly r: Redis
  readonly ns: string
  readonly leaseMs: number
  /** This thread's identity as a holder (RLock and Condition owner). */
  readonly me: string
  /** A connection of its own for a blocking pop, returned with `release`. */
  blocking(): Redis
  releaseBlocking(c: Redis): void
  /** Resolves on a message on `channel`; `subscribe` must have completed before the state is read. */
  listen(channel: string): Promise<Listener>
  /** Renews a lease every leaseMs / 3 until `stop` is called; `lost` if it could not. */
  renew(key: string, renew: () => Promise<boolean>): void
  stopRenewing(key: string): void
  signal: AbortSignal
  /** The caller passed a signal: waits that Redis cannot cancel go in slices. */
  abortable: boolean
  /** Tells the Redis thread when the caller's timeout ends (the first call counts), so that a Redis down past it fails the call then. */
  noteDeadline(deadline: number): void
  /**
   * Aborted when the caller was answered OSError (Redis unreachable past its deadline) while this
   * call's commands still wait to be sent: what they take when Redis comes back is given back.
   */
  gone: AbortSignal
}

export interface Listener {
  /** Until a message, `ms` or the signal. */
  next(ms: number, signal: AbortSignal): Promise<void>
  close(): void
}

const pack = (v: unknown): Buffer => serialize(v)

/**
 * A value that is already V8's serialization (an item as Redis holds it): the Redis thread answers
 * with these bytes as they are, instead of deserializing them to serialize them again.
 */
export class Packed {
  constructor(readonly bytes: Buffer) {}
}
const unpack = (b: Buffer | null): unknown => (b === null ? undefined : deserialize(b))

/** When a wait of `timeout` ms (null: for ever) ends; the first one a call computes is the call's own. */
function deadlineOf(env: Env, timeout: unknown): number {
  const deadline = timeout === null || timeout === undefined ? Infinity : performance.now() + Math.max(0, Number(timeout))
  env.noteDeadline(deadline)
  return deadline
}

/** Waits until `attempt` gives something, the deadline passes (undefined) or the caller aborts. */
async function until<T>(env: Env, channel: string, deadline: number, attempt: () => Promise<T | undefined>): Promise<T | undefined> {
  // Most calls need no wait: one try before subscribing costs no round trip for them.
  const first = await attempt()
  if (first !== undefined || deadline <= performance.now()) return first
  const l = await env.listen(channel)
  try {
    for (;;) {
      const r = await attempt()
      if (r !== undefined) return r
      const left = deadline - performance.now()
      if (left <= 0) return undefined
      env.signal.throwIfAborted()
      await l.next(Math.min(left, RECHECK_MS), env.signal)
      env.signal.throwIfAborted()
    }
  } finally {
    l.close()
  }
}

// --- Lua --------------------------------------------------------------------------------------

/**
 * Waiters of locks and semaphores are served in order of arrival. A blocking acquire that cannot
 * take joins a queue (a sorted set by arrival number) and holds a lease there, renewed by its
 * Redis thread while it waits; with `free` slots, only the first `free` live waiters may take, so
 * a newcomer cannot pass one that was woken. A waiter whose lease ran out (its process died) is
 * dropped from the front when met. A non-blocking try (`join` 0) takes a free slot at once, as
 * Java's tryLock does: it never waits, so it is in no one's way for long.
 */
const FAIR = `local function fair(q, seq, alive, token, free, lease, join)
  if join == '0' then return free > 0 end
  while free > 0 do
    local heads = redis.call('ZRANGE', q, 0, free - 1)
    local dead = false
    for _, w in ipairs(heads) do
      if w ~= token and redis.call('EXISTS', alive .. w) == 0 then redis.call('ZREM', q, w) dead = true end
    end
    if not dead then
      local mine = #heads < free
      for _, w in ipairs(heads) do if w == token then mine = true end end
      if mine then
        redis.call('ZREM', q, token)
        redis.call('DEL', alive .. token)
        return true
      end
      break
    end
  end
  if not redis.call('ZSCORE', q, token) then redis.call('ZADD', q, redis.call('INCR', seq), token) end
  redis.call('SET', alive .. token, '1', 'PX', lease)
  return false
end`

export const SCRIPTS: Record<string, { keys: number; lua: string }> = {
  // KEYS: list, unfinished (or ''); ARGV: item, maxsize. 1 when put, 0 when full.
  aioPut: {
    keys: 2,
    lua: `local max = tonumber(ARGV[2])
if max > 0 and redis.call('LLEN', KEYS[1]) >= max then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
if KEYS[2] ~= '' then redis.call('INCR', KEYS[2]) end
return 1`,
  },
  // KEYS: a get's own list, the queue; ARGV: 1 when the get returns the last item of its list.
  // Every other item there was taken by a pop whose answer was lost (ioredis sent it again after
  // a reconnect): back to the queue's head, in order. The get's list goes.
  aioTaken: {
    keys: 2,
    lua: `local items = redis.call('LRANGE', KEYS[1], 0, -1)
local last = #items
if ARGV[1] == '1' then last = last - 1 end
for i = last, 1, -1 do redis.call('LPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1])
return last`,
  },
  // KEYS: unfinished, done channel. The count left, or -1 when it would go below 0.
  aioTaskDone: {
    keys: 2,
    lua: `local n = redis.call('DECR', KEYS[1])
if n < 0 then redis.call('INCR', KEYS[1]) return -1 end
if n == 0 then redis.call('PUBLISH', KEYS[2], '0') end
return n`,
  },
  // KEYS: lock, fence, queue, seq; ARGV: token, lease ms, join, waiters' lease prefix. The fencing
  // number when acquired, else 0.
  aioLockAcquire: {
    keys: 4,
    lua: `${FAIR}
local free = 0
if redis.call('EXISTS', KEYS[1]) == 0 then free = 1 end
if not fair(KEYS[3], KEYS[4], ARGV[4], ARGV[1], free, ARGV[2], ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])`,
  },
  // KEYS: queue, channel; ARGV: token, waiters' lease prefix. A waiter that gives up leaves the
  // queue, and those behind it look again (it may have been next).
  aioLeaveQueue: {
    keys: 2,
    lua: `if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then redis.call('PUBLISH', KEYS[2], '1') end
redis.call('DEL', ARGV[2] .. ARGV[1])
return 1`,
  },
  // KEYS: lock, channel; ARGV: token. 1 released, 0 held by another, -1 not held.
  aioLockRelease: {
    keys: 2,
    lua: `local v = redis.call('GET', KEYS[1])
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', KEYS[2], '1')
return 1`,
  },
  // KEYS: key; ARGV: token, lease. 1 while the token holds it.
  aioRenew: {
    keys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if redis.call('TYPE', KEYS[1]).ok == 'hash' and redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`,
  },
  // KEYS: rlock, fence, queue, seq; ARGV: owner, lease, join, waiters' lease prefix, waiter token.
  // The depth after, or 0 when another owns it.
  aioRLockAcquire: {
    keys: 4,
    lua: `${FAIR}
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then return redis.call('HINCRBY', KEYS[1], 'depth', 1) end
local free = 0
if not owner then free = 1 end
if not fair(KEYS[3], KEYS[4], ARGV[4], ARGV[5], free, ARGV[2], ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'depth', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1`,
  },
  // KEYS: rlock, channel; ARGV: owner, all (1: release every level). The depth left, or -1 when not the owner.
  aioRLockRelease: {
    keys: 2,
    lua: `if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return -1 end
local d = redis.call('HINCRBY', KEYS[1], 'depth', -1)
if ARGV[2] == '1' then d = 0 end
if d <= 0 then redis.call('DEL', KEYS[1]) redis.call('PUBLISH', KEYS[2], '1') return 0 end
return d`,
  },
  // KEYS: count, holders, bound, queue, seq; ARGV: member, lease, value (initial), join, waiters'
  // lease prefix. The member's slot taken: 1, else 0.
  aioSemAcquire: {
    keys: 5,
    lua: `${FAIR}
redis.call('SET', KEYS[1], ARGV[3], 'NX')
redis.call('SET', KEYS[3], ARGV[3], 'NX')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, m in ipairs(dead) do redis.call('ZREM', KEYS[2], m) redis.call('INCR', KEYS[1]) end
if not fair(KEYS[4], KEYS[5], ARGV[5], ARGV[1], tonumber(redis.call('GET', KEYS[1])), ARGV[2], ARGV[4]) then return 0 end
redis.call('DECR', KEYS[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 1`,
  },
  // KEYS: count, holders, bound, channel; ARGV: member ('' for none), bounded (1/0), value. 1, or -1 past the bound.
  aioSemRelease: {
    keys: 4,
    lua: `redis.call('SET', KEYS[1], ARGV[3], 'NX')
redis.call('SET', KEYS[3], ARGV[3], 'NX')
if ARGV[2] == '1' and tonumber(redis.call('GET', KEYS[1])) + redis.call('ZCARD', KEYS[2]) >= tonumber(redis.call('GET', KEYS[3])) and (ARGV[1] == '' or redis.call('ZSCORE', KEYS[2], ARGV[1]) == false) then return -1 end
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[4], '1')
return 1`,
  },
  // KEYS: count, holders; ARGV: value. The free slots, after taking back those of dead holders.
  aioSemValue: {
    keys: 2,
    lua: `redis.call('SET', KEYS[1], ARGV[1], 'NX')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, m in ipairs(dead) do redis.call('ZREM', KEYS[2], m) redis.call('INCR', KEYS[1]) end
return tonumber(redis.call('GET', KEYS[1]))`,
  },
  // KEYS: holders; ARGV: member, lease. 1 while the member holds a slot.
  aioSemRenew: {
    keys: 1,
    lua: `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1]) return 1 end
return 0`,
  },
  // KEYS: waiters; ARGV: n (-1: all), prefix of the waiters' keys, prefix of their leases. The
  // waiters woken; a waiter whose lease ran out (its process died while waiting) is dropped, not counted.
  aioNotify: {
    keys: 1,
    lua: `local n = tonumber(ARGV[1])
local woken = {}
while n < 0 or #woken < n do
  local w = redis.call('LPOP', KEYS[1])
  if not w then break end
  if redis.call('EXISTS', ARGV[3] .. w) == 1 then
    redis.call('RPUSH', ARGV[2] .. w, '1')
    redis.call('PEXPIRE', ARGV[2] .. w, 600000)
    woken[#woken + 1] = w
  end
end
return woken`,
  },
  // KEYS: a notified waiter's wake-up list, its lease. 1 when the waiter died before it took the
  // wake-up (still there, lease gone): taken back, to be given to another; 0 when it took it or lives.
  aioNotifyLost: {
    keys: 2,
    lua: `if redis.call('LLEN', KEYS[1]) > 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`,
  },
  // KEYS: barrier, channel; ARGV: parties. {index, generation, passed (1/0)}, or {-1} when broken.
  aioBarrierArrive: {
    keys: 2,
    lua: `redis.call('HSETNX', KEYS[1], 'parties', ARGV[1])
redis.call('HSETNX', KEYS[1], 'gen', 0)
if redis.call('HGET', KEYS[1], 'broken') == '1' then return {-1} end
local parties = tonumber(redis.call('HGET', KEYS[1], 'parties'))
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen'))
local index = redis.call('HINCRBY', KEYS[1], 'count', 1) - 1
if index + 1 >= parties then
  redis.call('HSET', KEYS[1], 'count', 0, 'gen', gen + 1)
  redis.call('PUBLISH', KEYS[2], 'pass')
  return {index, gen, 1}
end
return {index, gen, 0}`,
  },
  // KEYS: barrier, channel; ARGV: generation. Breaks it if that generation is still waiting.
  aioBarrierBreak: {
    keys: 2,
    lua: `if tonumber(redis.call('HGET', KEYS[1], 'gen')) == tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'broken', 1)
  redis.call('PUBLISH', KEYS[2], 'broken')
end
return 1`,
  },
  // KEYS: barrier, channel. A new generation, not broken; those waiting on the old one are broken.
  aioBarrierReset: {
    keys: 2,
    lua: `local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if tonumber(redis.call('HGET', KEYS[1], 'count') or '0') > 0 then redis.call('HSET', KEYS[1], 'brokenGen', gen) end
redis.call('HSET', KEYS[1], 'count', 0, 'gen', gen + 1, 'broken', 0)
redis.call('PUBLISH', KEYS[2], 'reset')
return 1`,
  },
  // KEYS: list; ARGV: index. The item removed at index (Python's pop(i)), or nil.
  aioListPop: {
    keys: 1,
    lua: `local n = redis.call('LLEN', KEYS[1])
local i = tonumber(ARGV[1])
if i < 0 then i = n + i end
if i < 0 or i >= n then return nil end
local v = redis.call('LINDEX', KEYS[1], i)
local marker = '\\0aio-removed\\0'
redis.call('LSET', KEYS[1], i, marker)
redis.call('LREM', KEYS[1], 1, marker)
return v`,
  },
  // KEYS: list; ARGV: index, item. Python's insert(i, x).
  aioListInsert: {
    keys: 1,
    lua: `local n = redis.call('LLEN', KEYS[1])
local i = tonumber(ARGV[1])
if i < 0 then i = math.max(0, n + i) end
if i >= n then return redis.call('RPUSH', KEYS[1], ARGV[2]) end
local rest = redis.call('LRANGE', KEYS[1], i, -1)
redis.call('LTRIM', KEYS[1], 0, i - 1)
if i == 0 then redis.call('DEL', KEYS[1]) end
redis.call('RPUSH', KEYS[1], ARGV[2])
for _, v in ipairs(rest) do redis.call('RPUSH', KEYS[1], v) end
return n + 1`,
  },
}

type Scripted = Redis & Record<string, (...args: (string | number | Buffer)[]) => Promise<unknown>>

function sc(env: Env): Scripted {
  return env.r as Scripted
}

// --- the types ----------------------------------------------------------------------------------

type Handler = (env: Env, key: string, args: unknown[]) => Promise<unknown>

const lockChannel = (key: string) => `${key}:released`

/** The leases and tokens this thread holds, by key: a Lock's token, a Semaphore's slot members, a lock's fencing number. */
const held = new Map<string, { token: string; fence: number }>()
const slots = new Map<string, string[]>()

/** The queue of a lock's or semaphore's waiters (FAIR) and the prefix of their leases. */
const queueOf = (key: string) => ({ q: `${key}:queue`, seq: `${key}:queue:seq`, alive: `${key}:queue:alive:` })

/**
 * A blocking acquire in its turn (FAIR): `attempt(join)` tries once, joining the queue of waiters
 * when it cannot take. While queued, the waiter's lease is renewed; a waiter that gives up (its
 * timeout, an abort, an error) leaves the queue.
 */
async function inTurn(env: Env, key: string, token: string, block: unknown, deadline: number, attempt: (join: '0' | '1') => Promise<true | undefined>): Promise<boolean> {
  if (block === false) return (await attempt('0')) ?? false
  const { q, alive } = queueOf(key)
  let queued = false
  let took: true | undefined
  try {
    took = await until(env, lockChannel(key), deadline, async () => {
      const r = await attempt('1')
      if (r === undefined && !queued) {
        queued = true
        env.renew(alive + token, async () => (await env.r.pexpire(alive + token, env.leaseMs), true))
      }
      return r
    })
    return took ?? false
  } finally {
    if (queued) {
      env.stopRenewing(alive + token)
      if (!took) await sc(env).aioLeaveQueue(q, lockChannel(key), token, alive).catch(() => {})
    }
  }
}

async function lockAcquire(env: Env, key: string, [block = true, timeout = null]: unknown[]): Promise<boolean> {
  const deadline = deadlineOf(env, block === false ? 0 : timeout)
  const token = `${env.me}:${randomUUID()}`
  const { q, seq, alive } = queueOf(key)
  return inTurn(env, key, token, block, deadline, async (join) => {
    const fence = Number(await sc(env).aioLockAcquire(key, `${key}:fence`, q, seq, token, env.leaseMs, join, alive))
    if (fence === 0) return undefined
    if (env.gone.aborted) {
      await sc(env).aioLockRelease(key, lockChannel(key), token)
      return undefined
    }
    held.set(key, { token, fence })
    env.renew(key, async () => Number(await sc(env).aioRenew(key, token, env.leaseMs)) === 1)
    return true
  })
}

async function lockRelease(env: Env, key: string): Promise<undefined> {
  const h = held.get(key)
  if (!h) {
    const locked = (await env.r.exists(key)) === 1
    throw new OpError('ValueError', locked ? 'this thread does not hold the lock: a Redis lock is released by the thread that acquired it (its token)' : 'semaphore or lock released too many times')
  }
  held.delete(key)
  env.stopRenewing(key)
  const r = Number(await sc(env).aioLockRelease(key, lockChannel(key), h.token))
  if (r !== 1) throw new OpError('ValueError', "the lock's lease expired before release(): another holder may have it now (its fencing number tells)")
  return undefined
}

async function rlockAcquire(env: Env, key: string, [block = true, timeout = null]: unknown[]): Promise<boolean> {
  const deadline = deadlineOf(env, block === false ? 0 : timeout)
  const token = `${env.me}:${randomUUID()}`
  const { q, seq, alive } = queueOf(key)
  return inTurn(env, key, token, block, deadline, async (join) => {
    const depth = Number(await sc(env).aioRLockAcquire(key, `${key}:fence`, q, seq, env.me, env.leaseMs, join, alive, token))
    if (depth === 0) return undefined
    if (env.gone.aborted) {
      await sc(env).aioRLockRelease(key, lockChannel(key), env.me, '0')
      return undefined
    }
    if (depth === 1) env.renew(key, async () => Number(await sc(env).aioRenew(key, env.me, env.leaseMs)) === 1)
    return true
  })
}

async function rlockRelease(env: Env, key: string, all = false): Promise<number> {
  const depth = Number(await sc(env).aioRLockRelease(key, lockChannel(key), env.me, all ? '1' : '0'))
  if (depth < 0) throw new OpError('RuntimeError', 'cannot release un-acquired lock')
  if (depth === 0) env.stopRenewing(key)
  return depth
}

async function semAcquire(env: Env, key: string, [block = true, timeout = null]: unknown[]): Promise<boolean> {
  const deadline = deadlineOf(env, block === false ? 0 : timeout)
  const value = await semInit(env, key)
  const member = `${env.me}:${randomUUID()}`
  const { q, seq, alive } = queueOf(key)
  return inTurn(env, key, member, block, deadline, async (join) => {
    if (Number(await sc(env).aioSemAcquire(`${key}:count`, `${key}:holders`, `${key}:bound`, q, seq, member, env.leaseMs, value, join, alive)) !== 1) return undefined
    if (env.gone.aborted) {
      await sc(env).aioSemRelease(`${key}:count`, `${key}:holders`, `${key}:bound`, lockChannel(key), member, '0', value)
      return undefined
    }
    const mine = slots.get(key) ?? []
    mine.push(member)
    slots.set(key, mine)
    env.renew(`${key}#${member}`, async () => Number(await sc(env).aioSemRenew(`${key}:holders`, member, env.leaseMs)) === 1)
    return true
  })
}

async function semRelease(env: Env, key: string, n: number, bounded: boolean, value: number): Promise<undefined> {
  if (!Number.isInteger(n) || n < 1) throw new OpError('ValueError', 'n must be one or more')
  for (let i = 0; i < n; i++) {
    const member = slots.get(key)?.pop() ?? ''
    if (member) env.stopRenewing(`${key}#${member}`)
    const r = Number(await sc(env).aioSemRelease(`${key}:count`, `${key}:holders`, `${key}:bound`, lockChannel(key), member, bounded ? '1' : '0', value))
    if (r < 0) throw new OpError('ValueError', 'Semaphore released too many times')
  }
  return undefined
}

/** Names each get's own list (see taken()). */
let gets = 0

/** How often each connection went down: an answer lost with it is possible only across a change. */
const drops = new WeakMap<Redis, { n: number }>()
function dropsOf(c: Redis): { n: number } {
  let d = drops.get(c)
  if (!d) {
    const count = { n: 0 }
    drops.set(c, (d = count))
    c.on('close', () => count.n++)
  }
  return d
}

/**
 * After a pop into a get's own list (`taking`), on connection `c`, which had gone down `before`
 * times when the pop was sent: the item it answered stays taken, unless the caller is gone (Redis
 * was unreachable past its deadline); every other item there goes back to the queue's head. With
 * no drop in between, the list holds that item alone: it is deleted. Not awaited when the get
 * keeps its item: the caller has it at once, and it runs before anything this thread sends later.
 */
function taken(env: Env, c: Redis, before: number, taking: string, key: string, item: Buffer | null): Promise<unknown> {
  const keep = item !== null && !env.gone.aborted
  const calm = dropsOf(c).n === before
  if (calm && item === null) return Promise.resolve() // nothing was moved
  const done = calm && keep ? env.r.del(taking) : sc(env).aioTaken(taking, key, keep ? '1' : '0')
  if (keep) {
    done.catch(() => {}) // a connection lost now: ioredis sends it again once back
    return Promise.resolve()
  }
  return done
}

/**
 * A get moves the item to a list of its own (LMOVE, BLMOVE), not off the queue (LPOP): a pop whose
 * answer is lost with the connection is sent again by ioredis after the reconnect, and took an
 * item nobody got. Now that item waits in the get's list, and goes back (taken()).
 */
async function queueGet(env: Env, key: string, block: unknown, timeout: unknown): Promise<Packed> {
  const deadline = deadlineOf(env, block === false ? 0 : timeout)
  const taking = `${key}:taking:${env.me}:${++gets}`
  const got = async (c: Redis, before: number, b: Buffer | null): Promise<Packed | null> => {
    await taken(env, c, before, taking, key, b)
    if (b === null) return null
    if (env.gone.aborted) throw new OpError('OSError', 'Redis was unreachable past the timeout; the item went back')
    await afterGet(env, key)
    return new Packed(b)
  }
  if (block === false) {
    const before = dropsOf(env.r).n
    const item = await got(env.r, before, await env.r.lmoveBuffer(key, taking, 'LEFT', 'RIGHT'))
    if (item === null) throw new OpError('Empty', 'the queue is empty')
    return item
  }
  // An abortable wait goes in slices, so an abort is seen between them and takes nothing.
  const sliceMs = env.abortable ? SLICE_MS : Infinity
  const c = env.blocking()
  try {
    for (;;) {
      const s = Math.min(deadline - performance.now(), sliceMs)
      const before = dropsOf(c).n
      // BLMOVE's timeout is in seconds, 0 for ever.
      const item = await got(c, before, await c.blmoveBuffer(key, taking, 'LEFT', 'RIGHT', s === Infinity ? 0 : Math.max(0.001, s / 1000)))
      if (item) return item
      if (deadline - performance.now() <= 0) throw new OpError('Empty', 'the queue is empty')
      env.signal.throwIfAborted()
    }
  } finally {
    env.releaseBlocking(c)
  }
}

/** A queue's maxsize, fixed by its first creator: read once per thread. */
const maxsizes = new Map<string, number>()
async function maxsizeOf(env: Env, key: string): Promise<number> {
  let m = maxsizes.get(key)
  if (m === undefined) {
    m = Number(await env.r.hget(`${key}:meta`, 'maxsize')) || 0
    maxsizes.set(key, m)
  }
  return m
}

/** A bounded queue's putters wait for room: told by each get. */
async function afterGet(env: Env, key: string): Promise<void> {
  if ((await maxsizeOf(env, key)) > 0) await env.r.publish(`${key}:space`, '1')
}

async function queuePut(env: Env, key: string, [item, block = true, timeout = null]: unknown[], joinable: boolean): Promise<undefined> {
  const deadline = deadlineOf(env, block === false ? 0 : timeout)
  const max = await maxsizeOf(env, key)
  const bytes = pack(item)
  const attempt = async (): Promise<true | undefined> => (Number(await sc(env).aioPut(key, joinable ? `${key}:unfinished` : '', bytes, max)) === 1 ? true : undefined)
  const done = block === false ? await attempt() : await until(env, `${key}:space`, deadline, attempt)
  if (!done) throw new OpError('Full', 'the queue is full')
  return undefined
}

async function queueLen(env: Env, key: string): Promise<number> {
  return env.r.llen(key)
}

function queue(joinable: boolean): Record<string, Handler> {
  return {
    __create: async (env, key, [maxsize = 0]) => {
      await env.r.hsetnx(`${key}:meta`, 'maxsize', Number(maxsize) || 0)
    },
    put: (env, key, args) => queuePut(env, key, args, joinable),
    get: (env, key, [block = true, timeout = null]) => queueGet(env, key, block, timeout),
    qsize: (env, key) => queueLen(env, key),
    empty: async (env, key) => (await queueLen(env, key)) === 0,
    full: async (env, key) => {
      const max = await maxsizeOf(env, key)
      return max > 0 && (await queueLen(env, key)) >= max
    },
    taskDone: async (env, key) => {
      if (Number(await sc(env).aioTaskDone(`${key}:unfinished`, `${key}:done`)) < 0) throw new OpError('ValueError', 'task_done() called too many times')
      return undefined
    },
    join: async (env, key, [timeout = null]) => {
      await until(env, `${key}:done`, deadlineOf(env, timeout), async () => (Number(await env.r.get(`${key}:unfinished`)) > 0 ? undefined : true))
      return undefined
    },
    close: async () => undefined,
    joinThread: async () => undefined,
    cancelJoinThread: async () => undefined,
  }
}

const LOCK: Record<string, Handler> = {
  __create: async () => undefined,
  acquire: (env, key, args) => lockAcquire(env, key, args),
  release: (env, key) => lockRelease(env, key),
  fence: async (_env, key) => held.get(key)?.fence ?? null,
}

const RLOCK: Record<string, Handler> = {
  __create: async () => undefined,
  acquire: (env, key, args) => rlockAcquire(env, key, args),
  release: async (env, key) => {
    await rlockRelease(env, key)
    return undefined
  },
  fence: async (env, key) => Number(await env.r.get(`${key}:fence`)),
}

/**
 * A semaphore's initial value (its bound), fixed by its first creator; 0 is a value, 1 only when
 * absent. Once set it never changes, so each thread reads it once, not on every acquire.
 */
const semInits = new Map<string, number>()
async function semInit(env: Env, key: string): Promise<number> {
  let v = semInits.get(key)
  if (v === undefined) {
    const init = await env.r.get(`${key}:init`)
    v = init === null ? 1 : Number(init)
    if (init !== null) semInits.set(key, v)
  }
  return v
}

function semaphore(bounded: boolean): Record<string, Handler> {
  return {
    __create: async (env, key, [value = 1]) => {
      if (!Number.isInteger(value) || (value as number) < 0) throw new OpError('ValueError', 'semaphore initial value must be >= 0')
      await env.r.set(`${key}:init`, Number(value), 'NX')
      await sc(env).aioSemValue(`${key}:count`, `${key}:holders`, Number(value))
    },
    acquire: (env, key, args) => semAcquire(env, key, args),
    release: async (env, key, [n = 1]) => semRelease(env, key, Number(n), bounded, await semInit(env, key)),
    getValue: async (env, key) => Number(await sc(env).aioSemValue(`${key}:count`, `${key}:holders`, await semInit(env, key))),
  }
}

const EVENT: Record<string, Handler> = {
  __create: async () => undefined,
  isSet: async (env, key) => (await env.r.exists(key)) === 1,
  set: async (env, key) => {
    await env.r.set(key, '1')
    await env.r.publish(`${key}:set`, '1')
    return undefined
  },
  clear: async (env, key) => {
    await env.r.del(key)
    return undefined
  },
  wait: async (env, key, [timeout = null]) => (await until(env, `${key}:set`, deadlineOf(env, timeout), async () => ((await env.r.exists(key)) === 1 ? true : undefined))) ?? false,
}

/** Python's Condition over a Redis RLock (`<key>:lock`) and a list of waiters, each woken by its own key. */
/**
 * A notify(n) can reach a waiter that died an instant before (its lease not yet run out): until
 * each waiter it woke has taken its wake-up, this thread looks, every third of a lease; one that
 * died first has it taken back and given to the next live waiter, so that n live waiters wake.
 * (Looked after by the notifier's Redis thread: if that process dies too, the wake-up is lost.)
 */
function watchNotified(env: Env, key: string, woken: string[]): void {
  for (const w of woken) {
    const watch = `${key}#notified#${w}`
    const until = performance.now() + 10 * env.leaseMs
    env.renew(watch, async () => {
      if (Number(await sc(env).aioNotifyLost(`${key}:w:${w}`, `${key}:alive:${w}`)) === 1) {
        watchNotified(env, key, (await sc(env).aioNotify(`${key}:waiters`, 1, `${key}:w:`, `${key}:alive:`)) as string[])
        return false
      }
      // Taken (the list is gone) or long enough: stop looking.
      return (await env.r.exists(`${key}:w:${w}`)) === 1 && performance.now() < until
    })
  }
}

const CONDITION: Record<string, Handler> = {
  __create: async () => undefined,
  acquire: (env, key, args) => rlockAcquire(env, `${key}:lock`, args),
  release: async (env, key) => {
    await rlockRelease(env, `${key}:lock`)
    return undefined
  },
  wait: async (env, key, [timeout = null]) => {
    const deadline = deadlineOf(env, timeout)
    const lock = `${key}:lock`
    if ((await env.r.hget(lock, 'owner')) !== env.me) throw new OpError('RuntimeError', 'cannot wait on un-acquired lock')
    const depth = Number(await env.r.hget(lock, 'depth'))
    const w = randomUUID()
    // A waiter holds a lease while it waits, renewed here: notify() passes over one whose process died.
    const alive = `${key}:alive:${w}`
    await env.r.multi().set(alive, '1', 'PX', env.leaseMs).rpush(`${key}:waiters`, w).exec()
    env.renew(alive, async () => Number(await env.r.pexpire(alive, env.leaseMs)) === 1)
    await rlockRelease(env, lock, true)
    const c = env.blocking()
    let notified = false
    try {
      for (;;) {
        const left = deadline - performance.now()
        const s = left === Infinity ? SLICE_MS * 10 : Math.max(1, Math.min(left, SLICE_MS * 10))
        if (await c.blpop(`${key}:w:${w}`, s / 1000)) {
          notified = true
          break
        }
        if (deadline - performance.now() <= 0 || env.signal.aborted) {
          // Not woken in time: leave the queue of waiters; a notify that took us meanwhile counts.
          if (Number(await env.r.lrem(`${key}:waiters`, 0, w)) === 0) notified = (await env.r.lpop(`${key}:w:${w}`)) !== null || notified
          break
        }
      }
    } finally {
      env.releaseBlocking(c)
      env.stopRenewing(alive)
      await env.r.del(alive)
      // The lock comes back, at its depth, whatever happened (an abort included), as Python's wait does.
      const restore = new AbortController().signal
      await until({ ...env, signal: restore }, lockChannel(lock), Infinity, async () => ((await rlockAcquire({ ...env, signal: restore }, lock, [false])) ? true : undefined))
      if (depth > 1) await env.r.hincrby(lock, 'depth', depth - 1)
    }
    return notified
  },
  notify: async (env, key, [n = 1]) => {
    if ((await env.r.hget(`${key}:lock`, 'owner')) !== env.me) throw new OpError('RuntimeError', 'cannot notify on un-acquired lock')
    watchNotified(env, key, (await sc(env).aioNotify(`${key}:waiters`, Number(n), `${key}:w:`, `${key}:alive:`)) as string[])
    return undefined
  },
  notifyAll: async (env, key) => {
    if ((await env.r.hget(`${key}:lock`, 'owner')) !== env.me) throw new OpError('RuntimeError', 'cannot notify on un-acquired lock')
    await sc(env).aioNotify(`${key}:waiters`, -1, `${key}:w:`, `${key}:alive:`)
    return undefined
  },
}

const BARRIER: Record<string, Handler> = {
  __create: async (env, key, [parties, action, timeout]) => {
    if (!Number.isInteger(parties) || (parties as number) < 1) throw new OpError('ValueError', 'parties must be a positive integer')
    if (action !== undefined && action !== null) throw new OpError('NotImplementedError', 'a Barrier action cannot be shared through Redis: run it after wait() returns 0 in one party')
    await env.r.hsetnx(key, 'parties', Number(parties))
    if (timeout !== undefined && timeout !== null) await env.r.hsetnx(key, 'timeout', Number(timeout))
  },
  wait: async (env, key, [timeout]) => {
    if (timeout !== null && timeout !== undefined) deadlineOf(env, timeout)
    const channel = `${key}:barrier`
    const l = await env.listen(channel)
    try {
      const parties = Number(await env.r.hget(key, 'parties'))
      const r = (await sc(env).aioBarrierArrive(key, channel, parties)) as number[]
      if (r[0] === -1) throw new OpError('BrokenBarrierError', 'the barrier is broken')
      const [index, gen, passed] = r.map(Number)
      if (passed === 1) return index
      const t = timeout ?? (await env.r.hget(key, 'timeout'))
      const deadline = deadlineOf(env, t === null || t === undefined ? null : Number(t))
      for (;;) {
        const [g, broken, brokenGen] = await env.r.hmget(key, 'gen', 'broken', 'brokenGen')
        if (brokenGen !== null && Number(brokenGen) === gen && Number(g) > gen) throw new OpError('BrokenBarrierError', 'the barrier was reset')
        if (Number(g) > gen) return index
        if (broken === '1') throw new OpError('BrokenBarrierError', 'the barrier is broken')
        const left = deadline - performance.now()
        if (left <= 0 || env.signal.aborted) {
          await sc(env).aioBarrierBreak(key, channel, gen)
          // It may have passed meanwhile.
          if (Number(await env.r.hget(key, 'gen')) > gen) return index
          throw new OpError('BrokenBarrierError', 'the barrier is broken: a wait timed out')
        }
        await l.next(Math.min(left, RECHECK_MS), env.signal)
      }
    } finally {
      l.close()
    }
  },
  abort: async (env, key) => {
    await env.r.hset(key, 'broken', 1)
    await env.r.publish(`${key}:barrier`, 'broken')
    return undefined
  },
  reset: async (env, key) => {
    await sc(env).aioBarrierReset(key, `${key}:barrier`)
    return undefined
  },
  __get__: async (env, key, [name]) => {
    if (name === 'parties') return Number(await env.r.hget(key, 'parties'))
    if (name === 'nWaiting') return Number(await env.r.hget(key, 'count'))
    if (name === 'broken') return (await env.r.hget(key, 'broken')) === '1'
    throw new OpError('NotImplementedError', `a Redis Barrier has no property '${String(name)}'`)
  },
}

const VALUE: Record<string, Handler> = {
  __create: async (env, key, [typecode, value]) => {
    await env.r.hsetnx(`${key}:meta`, 'typecode', String(typecode))
    if ((await env.r.exists(key)) === 0) await env.r.set(key, pack(value ?? 0), 'NX')
  },
  __get__: async (env, key, [name]) => {
    if (name !== 'value') throw new OpError('NotImplementedError', `a Redis Value has no property '${String(name)}'`)
    const b = await env.r.getBuffer(key)
    return b === null ? undefined : new Packed(b)
  },
  __set__: async (env, key, [name, v]) => {
    if (name !== 'value') throw new OpError('NotImplementedError', `a Redis Value has no property '${String(name)}'`)
    await env.r.set(key, pack(v))
    return undefined
  },
  acquire: (env, key, args) => rlockAcquire(env, `${key}:lock`, args),
  release: async (env, key) => {
    await rlockRelease(env, `${key}:lock`)
    return undefined
  },
}

/** A dict key as a hash field: its type and value, so 1 and '1' stay two keys and equal tuples are one. */
function field(k: unknown): string {
  return JSON.stringify(k, (_key, v) => (typeof v === 'bigint' ? { $bigint: String(v) } : v instanceof Uint8Array ? { $bytes: Buffer.from(v).toString('base64') } : v)) ?? 'undefined'
}
function unfield(f: string): unknown {
  if (f === 'undefined') return undefined
  return JSON.parse(f, (_key, v) => (v && typeof v === 'object' && '$bigint' in v ? BigInt(v.$bigint) : v && typeof v === 'object' && '$bytes' in v ? Buffer.from(v.$bytes, 'base64') : v))
}

function keyError(k: unknown): OpError {
  return new OpError('KeyError', typeof k === 'string' ? `'${k}'` : String(k))
}

const DICT: Record<string, Handler> = {
  __create: async (env, key, [init]) => {
    if (init && typeof init === 'object') {
      const entries = init instanceof Map ? [...init] : Object.entries(init)
      for (const [k, v] of entries) await env.r.hset(key, field(k), pack(v))
    }
  },
  get: async (env, key, [k, fallback]) => {
    const b = await env.r.hgetBuffer(key, field(k))
    return b === null ? fallback : new Packed(b)
  },
  getitem: async (env, key, [k]) => {
    const b = await env.r.hgetBuffer(key, field(k))
    if (b === null) throw keyError(k)
    return new Packed(b)
  },
  set: async (env, key, [k, v]) => {
    await env.r.hset(key, field(k), pack(v))
    return undefined
  },
  delete: async (env, key, [k]) => {
    if ((await env.r.hdel(key, field(k))) === 0) throw keyError(k)
    return undefined
  },
  has: async (env, key, [k]) => (await env.r.hexists(key, field(k))) === 1,
  keys: async (env, key) => (await env.r.hkeys(key)).map(unfield),
  values: async (env, key) => (await env.r.hvalsBuffer(key)).map(unpack),
  items: async (env, key) => {
    const all = await env.r.hgetallBuffer(key)
    return Object.entries(all).map(([f, v]) => [unfield(f), unpack(v)])
  },
  len: async (env, key) => env.r.hlen(key),
  clear: async (env, key) => {
    await env.r.del(key)
    return undefined
  },
  pop: async (env, key, args) => {
    const f = field(args[0])
    const [[, b]] = (await env.r.multi().hgetBuffer(key, f).hdel(key, f).exec()) as [[unknown, Buffer | null], unknown]
    if (b !== null) return unpack(b)
    if (args.length > 1 && args[1] !== undefined) return args[1]
    throw keyError(args[0])
  },
  popitem: async (env, key) => {
    for (;;) {
      const [f] = await env.r.hkeys(key)
      if (f === undefined) throw keyError('popitem(): dictionary is empty')
      const [[, b], [, n]] = (await env.r.multi().hgetBuffer(key, f).hdel(key, f).exec()) as [[unknown, Buffer | null], [unknown, number]]
      if (n === 1 && b !== null) return [unfield(f), unpack(b)]
    }
  },
  setdefault: async (env, key, [k, v]) => {
    await env.r.hsetnx(key, field(k), pack(v ?? null))
    return unpack(await env.r.hgetBuffer(key, field(k)))
  },
  update: async (env, key, [other]) => {
    const entries = other instanceof Map ? [...other] : Object.entries((other ?? {}) as object)
    for (const [k, v] of entries) await env.r.hset(key, field(k), pack(v))
    return undefined
  },
  copy: async (env, key) => {
    const all = await env.r.hgetallBuffer(key)
    return new Map(Object.entries(all).map(([f, v]) => [unfield(f), unpack(v)]))
  },
}

function indexError(): OpError {
  return new OpError('IndexError', 'list index out of range')
}

const same = (a: Buffer, b: Buffer): boolean => a.equals(b)

const LIST: Record<string, Handler> = {
  __create: async (env, key, [init]) => {
    if (init && (await env.r.exists(key)) === 0) {
      const items = [...(init as Iterable<unknown>)]
      if (items.length) await env.r.rpush(key, ...items.map(pack))
    }
  },
  get: async (env, key, [i]) => {
    const b = await env.r.lindexBuffer(key, Number(i))
    if (b === null) throw indexError()
    return new Packed(b)
  },
  set: async (env, key, [i, v]) => {
    try {
      await env.r.lset(key, Number(i), pack(v))
    } catch {
      throw indexError()
    }
    return undefined
  },
  append: async (env, key, [v]) => {
    await env.r.rpush(key, pack(v))
    return undefined
  },
  extend: async (env, key, [vs]) => {
    const items = [...(vs as Iterable<unknown>)]
    if (items.length) await env.r.rpush(key, ...items.map(pack))
    return undefined
  },
  insert: async (env, key, [i, v]) => {
    await sc(env).aioListInsert(key, Number(i), pack(v))
    return undefined
  },
  pop: async (env, key, [i = -1]) => {
    const b = (await (env.r as Scripted).aioListPopBuffer(key, Number(i))) as Buffer | null
    if (b === null) throw new OpError('IndexError', 'pop index out of range')
    return new Packed(b)
  },
  remove: async (env, key, [v]) => {
    if ((await env.r.lrem(key, 1, pack(v))) === 0) throw new OpError('ValueError', 'list.remove(x): x not in list')
    return undefined
  },
  index: async (env, key, [v]) => {
    const want = pack(v)
    const i = (await env.r.lrangeBuffer(key, 0, -1)).findIndex((b) => same(b, want))
    if (i < 0) throw new OpError('ValueError', `${JSON.stringify(v)} is not in list`)
    return i
  },
  count: async (env, key, [v]) => {
    const want = pack(v)
    return (await env.r.lrangeBuffer(key, 0, -1)).filter((b) => same(b, want)).length
  },
  sort: async (env, key, [reverse = false]) => {
    const items = (await env.r.lrangeBuffer(key, 0, -1)).map(unpack) as (number | string)[]
    items.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0) * (reverse ? -1 : 1))
    await env.r.multi().del(key).rpush(key, ...(items.length ? items.map(pack) : [pack(null)])).exec()
    if (items.length === 0) await env.r.del(key)
    return undefined
  },
  reverse: async (env, key) => {
    const items = await env.r.lrangeBuffer(key, 0, -1)
    if (items.length) await env.r.multi().del(key).rpush(key, ...items.reverse()).exec()
    return undefined
  },
  len: async (env, key) => env.r.llen(key),
  slice: async (env, key, [start = 0, end]) => {
    const all = (await env.r.lrangeBuffer(key, 0, -1)).map(unpack)
    return all.slice(start as number, end as number | undefined)
  },
  toArray: async (env, key) => (await env.r.lrangeBuffer(key, 0, -1)).map(unpack),
  clear: async (env, key) => {
    await env.r.del(key)
    return undefined
  },
}

const NAMESPACE: Record<string, Handler> = {
  __create: async (env, key, [init]) => {
    for (const [k, v] of Object.entries((init ?? {}) as object)) await env.r.hset(key, k, pack(v))
  },
  getattr: async (env, key, [name]) => {
    const b = await env.r.hgetBuffer(key, String(name))
    if (b === null) throw new OpError('AttributeError', `'Namespace' object has no attribute '${String(name)}'`)
    return new Packed(b)
  },
  setattr: async (env, key, [name, v]) => {
    await env.r.hset(key, String(name), pack(v))
    return undefined
  },
  delattr: async (env, key, [name]) => {
    if ((await env.r.hdel(key, String(name))) === 0) throw new OpError('AttributeError', String(name))
    return undefined
  },
  hasattr: async (env, key, [name]) => (await env.r.hexists(key, String(name))) === 1,
  names: async (env, key) => env.r.hkeys(key),
}

/** What a holder token says about its holder: this thread, or another client of Redis. */
function holderText(env: Env, owner: string | null): string {
  if (!owner) return 'None'
  return owner.startsWith(env.me) ? 'MainThread (this thread, a client of Redis)' : 'a client of Redis'
}

/** The texts of the local classes' toString (runtime/sync, runtime/ipc), for the same state in Redis. */
const DESCRIBE: Record<string, (env: Env, key: string) => Promise<string>> = {
  Queue: async (env, key) => {
    const max = Number(await env.r.hget(`${key}:meta`, 'maxsize')) || 0
    return `AioQueue(size=${await env.r.llen(key)}${max ? `, maxsize=${max}` : ''})`
  },
  SimpleQueue: async (env, key) => `AioSimpleQueue(size=${await env.r.llen(key)})`,
  JoinableQueue: async (env, key) => {
    const max = Number(await env.r.hget(`${key}:meta`, 'maxsize')) || 0
    return `AioJoinableQueue(size=${await env.r.llen(key)}${max ? `, maxsize=${max}` : ''}, unfinished=${Number(await env.r.get(`${key}:unfinished`))})`
  },
  Lock: async (env, key) => `AioLock(owner=${holderText(env, await env.r.get(key))})`,
  RLock: async (env, key) => {
    const [owner, depth] = await env.r.hmget(key, 'owner', 'depth')
    return owner ? `AioRLock(owner=${holderText(env, owner)}, count=${Number(depth)})` : 'AioRLock(owner=None, count=0)'
  },
  Semaphore: async (env, key) => `AioSemaphore(value=${Number(await sc(env).aioSemValue(`${key}:count`, `${key}:holders`, await semInit(env, key)))})`,
  BoundedSemaphore: async (env, key) => {
    const bound = await semInit(env, key)
    return `AioBoundedSemaphore(value=${Number(await sc(env).aioSemValue(`${key}:count`, `${key}:holders`, bound))}, maxvalue=${bound})`
  },
  Event: async (env, key) => `AioEvent(${(await env.r.exists(key)) === 1 ? 'set' : 'unset'})`,
  Condition: async (env, key) => {
    const [owner, depth] = await env.r.hmget(`${key}:lock`, 'owner', 'depth')
    const lock = owner ? `owner=${holderText(env, owner)}, count=${Number(depth)}` : 'owner=None, count=0'
    return `AioCondition(AioRLock(${lock}), waiters=${await env.r.llen(`${key}:waiters`)})`
  },
  Barrier: async (env, key) => {
    const [parties, count, broken] = await env.r.hmget(key, 'parties', 'count', 'broken')
    return broken === '1' ? `AioBarrier(parties=${Number(parties)}, broken)` : `AioBarrier(parties=${Number(parties)}, waiting=${Number(count)})`
  },
  Value: async (env, key) => {
    const v = unpack(await env.r.getBuffer(key))
    const shown = typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `b'${Buffer.from(v).toString('latin1')}'` : String(v)
    return `AioValue('${await env.r.hget(`${key}:meta`, 'typecode')}', ${shown})`
  },
}

export const TYPES: Record<string, Record<string, Handler>> = {
  Queue: queue(false),
  SimpleQueue: queue(false),
  JoinableQueue: queue(true),
  Lock: LOCK,
  RLock: RLOCK,
  Semaphore: semaphore(false),
  BoundedSemaphore: semaphore(true),
  Event: EVENT,
  Condition: CONDITION,
  Barrier: BARRIER,
  Value: VALUE,
  dict: DICT,
  list: LIST,
  Namespace: NAMESPACE,
}

/** The key of a named object: its type's folder under the namespace, so a Lock and a Queue may share a name. */
export function keyOf(ns: string, typeid: string, name: string): string {
  return `${ns}:${typeid}:${name}`
}

/** Runs one operation. */
export async function run(env: Env, op: Op): Promise<unknown> {
  const t = TYPES[op.typeid]
  if (!t) throw new OpError('NotImplementedError', `the Redis context has no type '${op.typeid}'`)
  if (op.method === '__describe__' && DESCRIBE[op.typeid]) return DESCRIBE[op.typeid](env, keyOf(env.ns, op.typeid, op.name))
  const h = t[op.method]
  if (!h) throw new OpError('NotImplementedError', `'${op.typeid}' of the Redis context has no method '${op.method}'`)
  return h(env, keyOf(env.ns, op.typeid, op.name), op.args)
}
