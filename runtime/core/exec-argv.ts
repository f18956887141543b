// Node flags for the workers this library starts: the parent's, minus those that would make a
// worker run the parent's inline script instead of its own file (`node -e`, `-p`, `--input-type`).
// It imports nothing of the library's: the supervisor's first module loads it (start-process.ts).

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
 * Creates a Worker with the parent's flags; if Node refuses some of them for workers, retries
 * without those (its error names them).
 */
export function createWorker<W>(make: (execArgv: string[]) => W): W {
  for (;;) {
    const argv = workerExecArgv().filter((a) => !refused.has(a.split('=')[0]))
    try {
      return make(argv)
    } catch (error) {
      const e = error as { code?: string; message: string }
      const bad = e.code === 'ERR_WORKER_INVALID_EXEC_ARGV' ? e.message.split(':').pop()!.split(/[ ,]+/).filter((f) => f.startsWith('-')) : []
      const fresh = bad.filter((f) => !refused.has(f.split('=')[0]))
      if (fresh.length === 0) throw error
      for (const f of fresh) refused.add(f.split('=')[0])
    }
  }
}
