// Shared test helpers: run a behaviour in each call style, and start processes that are always
// ended by the test that started them.
import type { ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { AioProcess, type ProcessOptions } from '../generated/index.generated.js'

export type Style = 'blocking' | 'coro'
export const STYLES: readonly Style[] = ['blocking', 'coro']

/** Calls `method` on `obj` blocking, or awaits its coro_ twin. */
export async function call<T = unknown>(style: Style, obj: object, method: string, ...args: unknown[]): Promise<T> {
  const target = obj as Record<string, (...a: unknown[]) => unknown>
  return (style === 'blocking' ? target[method](...args) : await target[`coro_${method}`](...args)) as T
}

/** A generous bound for waits that must succeed: a bug fails the test instead of hanging it. */
export const LONG = 30_000

/** Starts a process and makes sure the test ends it. */
export function start(t: ExecutionContext, options: ProcessOptions): AioProcess {
  const p = new AioProcess(options)
  p.start()
  t.teardown(() => {
    try {
      if (p.isAlive()) p.kill()
      p.join(LONG)
    } catch {
      // closed by the test itself
    }
  })
  return p
}

/** Joins with a bound and asserts the process ended with `exitcode`. */
export function joined(t: ExecutionContext, p: AioProcess, exitcode = 0): void {
  p.join(LONG)
  t.false(p.isAlive(), 'process still alive after join(30 s)')
  t.is(p.exitcode, exitcode)
}

/** Runs an ES module script in a fresh `node -e` (killed after LONG ms), without blocking this loop. */
export function runNode(script: string, env: NodeJS.ProcessEnv = process.env, nodeArgs: string[] = []): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runNodeWith([...nodeArgs, '--input-type=module', '-e', script], env)
}

/** Runs `node ...args` (killed after LONG ms), without blocking this loop. */
export function runNodeWith(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env, timeout: LONG })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

/** The library's entry point as an import specifier for `runNode` scripts. */
export const ENTRY = JSON.stringify(new URL('../generated/index.generated.js', import.meta.url).href)
