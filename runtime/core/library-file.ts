// The library's own files that the threads it starts run first.

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ProcessError } from './errors.js'

/** Files found already: a first pool asks for the supervisor's once for the pool and once for each worker. */
const found = new Set<string>()

/**
 * A file of the library's that a thread it starts runs first (`url`, beside the module that asks);
 * a clear error when it is not there: an app that bundled the library has no such file, and its
 * thread failed later in a way that said nothing of why (a listener waited 30 s, a client for ever).
 */
export function libraryFile(url: URL, what: string): URL {
  if (found.has(url.href)) return url
  if (!existsSync(url)) throw new ProcessError(`cannot ${what}: the library's file ${fileURLToPath(url)} is missing. aioprocessing starts its threads and processes from its own files: if your app is bundled, keep aioprocessing external (esbuild --packages=external or --external:aioprocessing)`)
  found.add(url.href)
  return url
}
