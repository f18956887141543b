// Functions cross thread boundaries as source text: a process target, a barrier action. They must
// be self-contained (no variables from the enclosing scope); `{ module, name }` covers the rest.
// The sender checks them (function-source.ts); this module rebuilds them where they run, and
// imports the modules that `{ module, name }` and a process's preload name.

import { pathToFileURL } from 'node:url'
import { isAbsolute } from 'node:path'

/** A function as it crosses threads: its source text, or the module export to import. */
export type FunctionRef = { source: string } | { module: string; name: string }

/** Functions of modules this thread has loaded already, by `module#name`: loadFunction imports nothing for them. */
const loaded = new Map<string, (...args: unknown[]) => unknown>()

/**
 * Says that `fn` is export `name` of `module`, which this thread has loaded: the library's own
 * thread targets (a pool's loop), whose code a thread's first module loads with it (the bundle
 * puts it in the chunk that module imports), need no import of a module of their own (~2 ms each
 * in a booting thread).
 */
export function registerLoadedFunction(module: string, name: string, fn: (...args: never[]) => unknown): void {
  loaded.set(`${module}#${name}`, fn as (...args: unknown[]) => unknown)
}

/** The function a FunctionRef names, in this thread. */
export async function loadFunction(t: FunctionRef): Promise<(...args: unknown[]) => unknown> {
  if ('source' in t) return compileFunction(t.source, await helpersOf(t.source))
  const known = loaded.get(`${t.module}#${t.name}`)
  if (known) return known
  const specifier = isAbsolute(t.module) ? pathToFileURL(t.module).href : t.module
  const mod = (await importModule(specifier)) as Record<string, unknown>
  const fn = mod[t.name]
  if (typeof fn !== 'function') throw new TypeError(`${t.module} has no exported function '${t.name}'`)
  return fn as (...args: unknown[]) => unknown
}

/** Imports a module named by another thread's code, saying what went wrong in its terms. */
export async function importModule(specifier: string): Promise<unknown> {
  try {
    return await import(specifier)
  } catch (error) {
    const e = error as Error & { code?: string }
    if (e.code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?tsx?$/.test(specifier)) {
      e.message += ` — a TypeScript module needs a loader in the thread or process that imports it, and the hooks of node --import tsx do not reach worker threads on Node 20: pass preload: ['tsx/esm/api'] to the process or pool (it registers tsx there), or compile the module to JavaScript`
    } else if (e.code === 'ERR_MODULE_NOT_FOUND' && !/^(file|data|node):/.test(specifier) && !isAbsolute(specifier)) {
      e.message += ` — '${specifier}' was resolved as a package from the library's folder; for a file of yours pass new URL('./file.mjs', import.meta.url) or an absolute path`
    }
    throw e
  }
}

/** Runs the modules a process preloads, in order; one that exports register() has it called (tsx/esm/api). */
export async function preloadModules(specifiers: readonly string[] = []): Promise<void> {
  for (const specifier of specifiers) {
    const mod = (await importModule(specifier)) as { register?: () => unknown }
    if (typeof mod.register === 'function') await mod.register()
  }
}

/** A name a compiler gives a helper (compiler-helpers.ts) appears in the source: most functions have none. */
const MAY_CALL_HELPER = /(?<![\w$.])_{1,2}[a-zA-Z_]/

/**
 * The helper texts `source` needs (compiler-helpers.ts), loaded only for a function that may call
 * one: they are ~24 KB that a fresh thread would compile first.
 */
async function helpersOf(source: string): Promise<string> {
  return MAY_CALL_HELPER.test(source) ? (await import('./compiler-helpers.js')).helpersFor(source) : ''
}
/**
 * Rebuilds a function from its source; method shorthand (`run() {}`) is accepted too. `helpers`:
 * the texts of the compiler helpers it calls (helpersFor in compiler-helpers.ts).
 */
export function compileFunction(source: string, helpers: string): (...args: any[]) => unknown {
  let fn: (...args: any[]) => unknown
  try {
    fn = new Function(`${helpers}\nreturn (${source})`)()
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error
    const holder = new Function(`${helpers}\nreturn ({ ${source} })`)() as Record<string, (...args: unknown[]) => unknown>
    fn = Object.values(holder)[0]
  }
  return explainingFreeVariables(fn, source)
}

/**
 * The rebuilt function, with the reason added to a ReferenceError for a name its own source uses:
 * a variable of the sender's scope (a closure) did not travel with the source. functionSource
 * refuses most of those in the sender; this catches the names its scan lets through, and globals
 * the sender has and this thread lacks.
 */
function explainingFreeVariables(fn: (...args: any[]) => unknown, source: string): (...args: any[]) => unknown {
  const explain = (error: unknown): never => {
    const name = error instanceof ReferenceError ? /^(\S+) is not defined$/.exec(error.message)?.[1] : undefined
    if (name && new RegExp(`(?<![\\w$.])${name.replace(/\$/g, '\\$')}(?![\\w$])`).test(source)) {
      ;(error as ReferenceError).message += ` — the function was sent to this thread or process as source, and ${name} is a variable of the scope it was written in, which does not travel with it: pass ${name} in args, or use { module, name }`
    }
    throw error
  }
  return function (this: unknown, ...args: unknown[]) {
    let r: unknown
    try {
      r = fn.apply(this, args)
    } catch (error) {
      explain(error)
    }
    return r instanceof Promise ? r.catch(explain) : r
  }
}
