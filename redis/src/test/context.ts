// A private redis-server for one test file: started on a Unix socket in a temp folder (no TCP
// port, no persistence), stopped by pid at the end. Without redis-server the file fails, saying how
// to install it: the Redis suite is never skipped silently.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { AioPipe } from 'aioprocessing'
import { redisContext, type RedisContext } from '../index.js'

export interface RedisServer {
  readonly socket: string
  readonly child: ChildProcess
  stop(): void
}

const nap = new Int32Array(new SharedArrayBuffer(4))

/** Starts redis-server and waits (blocking, at most 10 s) until its socket is there. */
export function startRedis(): RedisServer {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed: the Redis tests start their own server. Install it with `apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis`.')
  }
  const dir = mkdtempSync(join(tmpdir(), 'aio-redis-'))
  const socket = join(dir, 'r.sock')
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  const end = Date.now() + 10_000
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`redis-server did not start (exit code ${child.exitCode})`)
    }
    Atomics.wait(nap, 0, 0, 5)
  }
  return {
    socket,
    child,
    stop() {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

let files = 0

/**
 * The conformance cases' context on Redis: each factory makes an object under a fresh name, with
 * the local class's arguments, so the generated cases run unchanged. `after` registers the end.
 */
export function redisTestContext(after: (stop: () => void) => void): Record<string, (...args: any[]) => any> {
  const server = startRedis()
  const ctx: RedisContext = redisContext({ url: server.socket, namespace: `t${process.pid}-${files++}-${randomBytes(3).toString('hex')}`, lease: 2_000 })
  after(() => {
    ctx.close()
    server.stop()
  })
  let n = 0
  const name = (): string => `o${++n}`
  return {
    AioQueue: (maxsize?: number, options?: object) => ctx.AioQueue(name(), maxsize, options),
    AioJoinableQueue: (maxsize?: number, options?: object) => ctx.AioJoinableQueue(name(), maxsize, options),
    AioSimpleQueue: () => ctx.AioSimpleQueue(name()),
    AioLock: () => ctx.AioLock(name()),
    AioRLock: () => ctx.AioRLock(name()),
    AioSemaphore: (value?: number) => ctx.AioSemaphore(name(), value),
    AioBoundedSemaphore: (value?: number) => ctx.AioBoundedSemaphore(name(), value),
    AioEvent: () => ctx.AioEvent(name()),
    AioCondition: (lock?: never) => ctx.AioCondition(name(), lock),
    AioBarrier: (parties: number, action?: null, timeout?: number | null) => ctx.AioBarrier(name(), parties, action, timeout ?? null),
    AioValue: (typecode: string, value?: unknown, options?: { lock?: boolean }) => ctx.AioValue(name(), typecode, value, options),
    AioPipe: (duplex = true) => AioPipe(duplex),
  }
}
