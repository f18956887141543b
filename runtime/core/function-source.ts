// The sending side of a function that crosses threads as source (source.ts rebuilds it): its
// checks that it is self-contained, made where the mistake is (in the caller's thread, at the
// call), not in the thread that runs it. Apart from source.ts, so that a thread that only runs
// functions does not load the tokenizer they need (free-names.ts).

import { HELPERS } from './compiler-helpers.js'
import { freeNames, usesImportMeta, usesThis } from './free-names.js'

/** What functionSource knows of where a function goes. */
export interface Destination {
  /** Whether its sender may pass values in args or send { module, name } instead (a process or a pool can; a barrier's action cannot): what an error suggests. */
  argsOrModule?: boolean
  /** Whether modules run there first (`preload`): they may define globals this thread lacks, so a free name is left to the run-time explanation. */
  preloaded?: boolean
}

/** The source of a self-contained function, or a clear error for one that has no usable source. */
export function functionSource(name: string, fn: (...args: any[]) => unknown, { argsOrModule = true, preloaded = false }: Destination = {}): string {
  const source = Function.prototype.toString.call(fn)
  // An inline lambda is a new function object at every call (pool.apply((x) => …) in a loop): its
  // source was checked already, and the checks below tokenize it.
  const key = preloaded ? `p${source}` : source
  if (accepted.has(key)) return source
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(`${name} must be a self-contained function written in JavaScript, not a built-in or bound function; use { module, name } instead`)
  }
  if (/^class\b/.test(source)) {
    throw new TypeError(`${name} is a class; a target or task is a function (pass one that constructs it, or { module, name })`)
  }
  // Method shorthand (`m() { … }`, `async m()`, `get m()`) that uses `this`: shipped as source it
  // runs without its object, and this.x is undefined (a wrong result, not an error).
  if (!/^(?:async\s*)?(?:function\b|\(|[\w$]+\s*=>)/.test(source) && usesThis(source)) {
    throw new TypeError(`${name} is a method that uses \`this\`: shipped to another thread as source it would run without its object; pass a function that takes the object's data as arguments, or { module, name }`)
  }
  // Compiled from its text where it runs, it is no module: `import.meta` is a syntax error there.
  if (usesImportMeta(source)) {
    throw new TypeError(`${name} uses import.meta, which a function sent as source text does not have where it runs (it is compiled there, not imported); ${argsOrModule ? 'read what you need of it here and pass that in args (import.meta.url, import.meta.dirname), or export the function from a module and pass { module: import.meta.url, name }' : 'read what you need of it outside the function'}`)
  }
  // A helper is a free name the function calls (a parameter or a variable of its own named so is the user's).
  const free = preloaded ? [] : freeNames(source)
  const helper = [...source.matchAll(/(?<![\w$.])(_{1,2}[a-zA-Z_]+)\(/g)].map((m) => m[1]).find((h) => !Object.hasOwn(HELPERS, h) && (COMPILER_HELPER.test(h) || SWC_HELPER.test(h)) && (preloaded ? !declares(source, h) : free.includes(h)))
  if (helper) {
    throw new TypeError(`${name} calls ${helper}, a helper its compiler (${SWC_HELPER.test(helper) ? 'swc' : 'TypeScript or esbuild'}) put at the top of the module, which does not travel with the function's source; compile for a newer target ("target": "ES2022" or later), or pass { module, name }`)
  }
  if (!preloaded) checkSelfContained(name, free, argsOrModule)
  if (accepted.size >= ACCEPTED_MAX) accepted.clear()
  accepted.add(key)
  return source
}

/** Sources that passed functionSource's checks (keyed with 'p' in front when preloaded), at most ACCEPTED_MAX. */
const accepted = new Set<string>()
const ACCEPTED_MAX = 1024

/**
 * Refuses a function that uses a variable of the scope it was written in. What the receiving
 * thread provides is this thread's globals (both are Node) and the helpers compileFunction adds; a
 * global this thread has and the other lacks is left to the explanation added at run time.
 */
function checkSelfContained(name: string, free: readonly string[], argsOrModule: boolean): void {
  const closure = free.filter((n) => !(n in globalThis) && !Object.hasOwn(HELPERS, n))
  if (closure.length === 0) return
  const names = listed(closure)
  const what = closure.length === 1 ? 'a variable' : 'variables'
  const one = closure.length === 1
  // A function cannot go in args: what the first fix cannot carry, the second does.
  const fix = argsOrModule
    ? `pass ${names} in args (and take ${one ? 'it as a parameter' : 'them as parameters'}) if ${one ? 'it is data or a shared object' : 'they are data or shared objects'}; ${one ? 'if it is a function' : 'for a function among them'}, which cannot go in args, import it inside (await import('node:crypto')) or use { module, name }`
    : 'it may use only its parameters, its own variables and globals'
  throw new TypeError(`${name} uses ${names}, ${what} of the scope it was written in: it travels to its thread or process as source, without its closure; ${fix}`)
}

/** `a`, `a and b`, `a, b and c`. */
function listed(names: string[]): string {
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`
}

/** Whether `source` defines `name` itself (a function of the user's that happens to look like a helper). */
function declares(source: string, name: string): boolean {
  return new RegExp(`(?:function\\s+|\\b(?:var|let|const)\\s+)${name}\\b`).test(source)
}

/** Names compilers give their module-level helpers (TypeScript's tslib, esbuild's runtime). */
const COMPILER_HELPER = /^__(awaiter|generator|rest|assign|spreadArray|extends|decorate\w*|esDecorate|runInitializers|classPrivate\w*|private\w*|accessCheck|pow|template|yieldStar|forAwait|asyncGenerator|await|super\w*|require|toESM|toCommonJS|esm|commonJS|export|reExport|create|getProtoOf|getOwnProp\w*|decorator\w*|expectFn|earlyAccess|restKey|setFunctionName|propKey|makeTemplateObject|importStar|importDefault|createBinding|setModuleDefault|metadata|param|values|read|asyncValues|asyncDelegator)$/

/** Names swc gives the helpers it inlines (@swc/helpers): `_define_property`, `_object_spread`... */
const SWC_HELPER = /^_(?:async|await|apply|array|assert|call|check|class|construct|create|decorate|define|extends|get|inherits|init|instanceof|interop|is|iterable|new|non|object|overload|possible|read|set|skip|sliced|super|tagged|throw|to|ts|type|unsupported|update|using|wrap|write)_[a-z_]+$/
