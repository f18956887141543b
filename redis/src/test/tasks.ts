// Task functions of the pool tests' workers (started with --module <this file>).
import { writeFileSync } from 'node:fs'
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

/** Says which worker runs it (a file named after x, holding its pid), then runs long enough to be killed. */
export async function marked(x: number, dir: string, ms: number): Promise<[number, number]> {
  writeFileSync(join(dir, `started-${x}-${process.pid}`), '')
  await new Promise((r) => setTimeout(r, ms))
  return [x, process.pid]
}
