// Node flags for the workers this library starts: the parent's, minus those that would make a
// worker run the parent's inline script instead of its own file (`node -e`, `-p`, `--input-type`);
// and the library's own files those workers run.

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ProcessError } from './errors.js'

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

/**
 * A file of the library's that a thread it starts runs first (`url`, beside the module that asks);
 * a clear error when it is not there: an app that bundled the library has no such file, and its
 * thread failed later in a way that said nothing of why (a listener waited 30 s, a client for ever).
 */
export function libraryFile(url: URL, what: string): URL {
  if (!existsSync(url)) throw new ProcessError(`cannot ${what}: the library's file ${fileURLToPath(url)} is missing. aioprocessing starts its threads and processes from its own files: if your app is bundled, keep aioprocessing external (esbuild --packages=external or --external:aioprocessing)`)
  return url
}
