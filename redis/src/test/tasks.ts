// Task functions of the pool tests' workers (started with --module <this file>).
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export function square(x: number): number {
  return x * x
}

export function add(a: number, b: number): number {
  return a + b
}

export async function sleepy(x: number, ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms))
  return x
}

export function fail(x: unknown): never {
  throw new RangeError(`bad ${String(x)}`)
}

export function die(): void {
  process.kill(process.pid, 'SIGKILL')
}

/** The first time (no file `marker` yet): returns x, and its worker is killed right after, while it sends the result. */
export function dieAfterReturn(x: number, marker: string): number {
  if (!existsSync(marker)) {
    writeFileSync(marker, '')
    setImmediate(() => process.kill(process.pid, 'SIGKILL'))
  }
  return x
}

/** Says which worker runs it (a file named after x, holding its pid), then runs long enough to be killed. */
export async function marked(x: number, dir: string, ms: number): Promise<[number, number]> {
  writeFileSync(join(dir, `started-${x}-${process.pid}`), '')
  await new Promise((r) => setTimeout(r, ms))
  return [x, process.pid]
}

/** Meets the other pool worker at a named Redis barrier (both must run it at once), then reports its pid. */
export async function meet(url: string, namespace: string): Promise<number> {
  const { redisContext } = await import('../index.js')
  const ctx = redisContext({ url, namespace })
  try {
    await ctx.AioBarrier('meet', 2).coro_wait(20_000)
    await ctx.AioQueue('met').coro_put(process.pid)
    return process.pid
  } finally {
    ctx.close()
  }
}

/** About `ms` of CPU work. */
export function busy(ms: number): number {
  const end = performance.now() + ms
  let n = 0
  while (performance.now() < end) n++
  return n > 0 ? ms : 0
}
