// Shared test helpers: run a behaviour in each call style, and start processes that are always
// ended by the test that started them.
import type { ExecutionContext } from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { AioProcess, type ProcessOptions } from '../generated/index.generated.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type Style = 'blocking' | 'coro'
export const STYLES: readonly Style[] = ['blocking', 'coro']

/** Calls `method` on `obj` blocking, or awaits its coro_ twin. */
export async function call<T = unknown>(style: Style, obj: object, method: string, ...args: unknown[]): Promise<T> {
  const target = obj as Record<string, (...a: unknown[]) => unknown>
  return (style === 'blocking' ? target[method](...args) : await target[`coro_${method}`](...args)) as T
}

/** A generous bound for waits that must succeed: a bug fails the test instead of hanging it. */
export const LONG = 30_000

/**
 * The bound of a server process that a test starts and ends itself: it must outlive the test's
 * body, which under a whole suite on 2 cores can take longer than LONG (a remote manager's server
 * killed at 30 s failed its test's calls with EPIPE, in CI).
 */
export const SERVER_LIFE = 4 * LONG

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

/** Runs an ES module script in a fresh `node -e` (killed after `timeout` ms), without blocking this loop. */
export function runNode(script: string, env: NodeJS.ProcessEnv = process.env, nodeArgs: string[] = [], timeout = LONG): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runNodeWith([...nodeArgs, '--input-type=module', '-e', script], env, timeout)
}

/** Runs an ES module script in a fresh `node` under `ulimit -n <fds>` (killed after 4 × LONG ms). */
export function runNodeUnderFdLimit(script: string, fds = 256, env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return run('bash', ['-c', `ulimit -n ${fds} && exec "$0" --input-type=module -e "$1"`, process.execPath, script], env, 4 * LONG)
}

/**
 * Script text for a `runNode` script that counts its fds: `fds()` now, and `await settled()` once the
 * count has held still (threads and spare processes end and boot a little after a pool's join()).
 */
export const FD_COUNTING = `
  const { readdirSync: fdDir } = await import('node:fs')
  const fds = () => fdDir('/proc/self/fd').length
  const settled = async () => {
    let last = -1
    // Still for 1.2 s: a spare boots only once what was spawned has loaded, which on a loaded
    // machine takes a worker process a few hundred ms.
    for (let same = 0, tries = 0; same < 20 && tries < 400; tries++) {
      await new Promise((r) => setTimeout(r, 60))
      const n = fds()
      same = n === last ? same + 1 : 0
      last = n
    }
    return last
  }
`

/** Script text for a `runNode` script: `await childPids()`, the pids of its child processes, once it has one (or after 30 s, none). */
export const CHILD_PIDS = `
  const { readdirSync: procDir, readFileSync: procFile } = await import('node:fs')
  const childrenNow = () => procDir('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => {
    try { return procFile('/proc/' + d + '/stat', 'utf8').split(') ')[1].split(' ')[1] === String(process.pid) } catch { return false }
  })
  const childPids = async () => {
    for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 5))) {
      const pids = childrenNow()
      if (pids.length) return pids.map(Number)
    }
    return []
  }
`

/** Runs `node ...args` (killed after `timeout` ms), without blocking this loop. */
export function runNodeWith(args: string[], env: NodeJS.ProcessEnv = process.env, timeout = LONG): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, args, env, timeout)
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, timeout })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

/** The library's entry point as an import specifier for `runNode` scripts. */
export const ENTRY = JSON.stringify(new URL('../generated/index.generated.js', import.meta.url).href)

/**
 * CPython 3.11, 3.12 and 3.13 as [version, env for `python3`]: pyenv's when it has that version,
 * else the system python3 when it is that version; `{ SKIP: '1' }` for one that is not here.
 */
export function pythons(): [string, NodeJS.ProcessEnv][] {
  const found: [string, NodeJS.ProcessEnv][] = []
  const bare = spawnSync('pyenv', ['versions', '--bare'], { encoding: 'utf8' })
  const versions = bare.status === 0 ? bare.stdout.split('\n').map((v) => v.trim()) : []
  for (const want of ['3.11', '3.12', '3.13']) {
    const v = versions.find((x) => x.startsWith(`${want}.`))
    const env = v ? { ...process.env, PYENV_VERSION: v } : process.env
    const probe = spawnSync('python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8', env })
    if (probe.status === 0 && probe.stdout.trim() === want) found.push([want, env])
    else found.push([want, { SKIP: '1' }])
  }
  return found
}

/** Runs a Python script to its end (bounded by LONG): its exit code and output. */
export function python(env: NodeJS.ProcessEnv, script: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', script], { env, timeout: LONG })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => resolve({ code, out, err }))
  })
}

/** A temporary folder, removed when the test ends. */
export function tempDir(t: ExecutionContext, prefix = 'aio-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
