// Rebuilding a function where it runs: compiling its source text, importing the module that
// exports it. Apart from source.ts, which adds the compiler helpers a source may call (~24 KB,
// imported only then), so that a pool thread's first module (pool/first-task.ts) can rebuild
// a first task's function before the library has loaded, without them.

// Got, not imported, as core/stdio.ts says why.
const { pathToFileURL } = process.getBuiltinModule('node:url')
const { isAbsolute } = process.getBuiltinModule('node:path')

/** A function as it crosses threads: its source text, or the module export to import. */
export type FunctionRef = { source: string } | { module: string; name: string }

/** Export `t.name` of module `t.module`, imported in this thread. */
export async function loadExport(t: { module: string; name: string }): Promise<(...args: unknown[]) => unknown> {
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

/** A name a compiler gives a helper (compiler-helpers.ts) appears in the source: most functions have none. */
export const MAY_CALL_HELPER = /(?<![\w$.])_{1,2}[a-zA-Z_]/

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
