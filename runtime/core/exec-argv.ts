// Node flags for the workers this library starts: the parent's, minus those that would make a
// worker run the parent's inline script instead of its own file (`node -e`, `-p`, `--input-type`).
// It imports nothing of the library's: the supervisor's first module loads it (start-process.ts).
import { readFileSync, readdirSync } from 'node:fs'

const WITH_VALUE = new Set(['-e', '--eval', '-p', '--print', '--input-type'])
const ALONE = /^(?:-e|--eval|-p|--print|--input-type)=|^-(?:pe|ep)$/

export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (WITH_VALUE.has(argv[i])) i++
    else if (!ALONE.test(argv[i])) out.push(argv[i])
  }
  return out
}

/** Flags a Worker refused (per-process ones like --expose-gc), learnt from its error and left out since. */
const refused = new Set<string>()

/**
 * Fds a new thread needs: 4 for its event loop and ports, the rest for the modules it reads, some
 * at once (a pool's thread of this library started with 7 free and failed with 6, measured here;
 * 3 spare).
 */
export const THREAD_FDS = 10

/** A test hook: threads are made without counting fds, as when another thread takes them in between. */
const NO_FD_COUNT = process.env.AIOPROCESSING_TEST_NO_FD_COUNT === '1'

/** This process's limit on open fds (the soft RLIMIT_NOFILE), read once; Infinity where /proc does not say. */
let fdLimit: number | undefined

/**
 * When this thread made its latest threads. One made less than RESERVE_MS ago may still be
 * loading and about to take fds that the count sees free: RESERVED_FDS of them are left to it.
 * (Its pool's threads loading, a supervisor made beside them passed the count and failed.)
 */
const made: number[] = []
const RESERVE_MS = 100
const RESERVED_FDS = 5
/**
 * The last count, reused for COUNT_FRESH_MS less THREAD_FDS for each thread made since: listing
 * /proc/self/fd takes ~2.6 ms with 5,000 fds open and ~18 ms with 19,000 (a server's sockets),
 * which a pool's burst of threads would pay each.
 */
let lastCount: { at: number; free: number } | undefined
const COUNT_FRESH_MS = 50

/**
 * Throws EMFILE unless THREAD_FDS more fds may be opened now. A thread that has none fails in its
 * own start-up, and says so only in an 'error' event of this thread's event loop: a thread blocked
 * on what the new one would do (a pool's apply(), a join()) would never hear of it, and wait for
 * ever. Counted, not opened (a probe that opened them took them from a thread made just before,
 * still starting), so another thread may still take them in between: that case stays the event's.
 */
export function threadFdsFree(): void {
  if (NO_FD_COUNT) return
  const now = performance.now()
  while (made.length > 0 && now - made[0] > RESERVE_MS) made.shift()
  if (lastCount !== undefined && now - lastCount.at < COUNT_FRESH_MS) {
    // Those made since are counted in full; those made before it, still starting, as below. A
    // shortage is counted again (fds may have come back since).
    const since = made.filter((t) => t >= lastCount!.at).length // all within RESERVE_MS
    if (enough(lastCount.free - THREAD_FDS * since, made.length - since)) return
  }
  lastCount = undefined
  let open: number
  try {
    fdLimit ??= softFdLimit()
    if (fdLimit === Infinity) return
    // Below the limit only: an fd inherited with a higher number takes no place a new one could.
    let below = 0
    for (const fd of readdirSync('/proc/self/fd')) if (Number(fd) < fdLimit) below++
    open = below - 1 // less the one that reads the folder
  } catch (error) {
    const e = error as NodeJS.ErrnoException
    if (e.code !== 'EMFILE' && e.code !== 'ENFILE') {
      fdLimit ??= Infinity // nothing to count with (no /proc): threads just try
      return
    }
    open = fdLimit ?? 0
  }
  const free = Math.max(0, (fdLimit ?? 0) - open)
  if (enough(free, made.length)) {
    lastCount = { at: now, free }
    return
  }
  const also = made.length > 0 ? ` (and ${RESERVED_FDS} for each of the ${made.length} made just before, still starting)` : ''
  throw Object.assign(new Error(`EMFILE: too many open files: a new thread needs ${THREAD_FDS} free file descriptors${also}, and this process has ${free}`), { code: 'EMFILE' })
}

/** Whether `free` fds leave THREAD_FDS for a new thread and RESERVED_FDS for each of `starting` made just before it. */
function enough(free: number, starting: number): boolean {
  return free >= THREAD_FDS + RESERVED_FDS * Math.max(0, starting)
}

function softFdLimit(): number {
  const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
  const n = Number(line?.[1])
  return Number.isFinite(n) ? n : Infinity
}

/**
 * Creates a Worker with the parent's flags, once the fds it needs are there (threadFdsFree, unless
 * the caller counts them itself: `countFds` false); if Node refuses some of the flags for workers,
 * retries without those (its error names them).
 */
export function createWorker<W>(make: (execArgv: string[]) => W, countFds = true): W {
  if (countFds) threadFdsFree()
  for (;;) {
    const argv = workerExecArgv().filter((a) => !refused.has(a.split('=')[0]))
    try {
      const worker = make(argv)
      made.push(performance.now())
      return worker
    } catch (error) {
      const e = error as { code?: string; message: string }
      const bad = e.code === 'ERR_WORKER_INVALID_EXEC_ARGV' ? e.message.split(':').pop()!.split(/[ ,]+/).filter((f) => f.startsWith('-')) : []
      const fresh = bad.filter((f) => !refused.has(f.split('=')[0]))
      if (fresh.length === 0) throw error
      for (const f of fresh) refused.add(f.split('=')[0])
    }
  }
}
