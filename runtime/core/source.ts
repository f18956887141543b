// Functions cross thread boundaries as source text: a process target, a barrier action. They must
// be self-contained (no variables from the enclosing scope); `{ module, name }` covers the rest.

import { pathToFileURL } from 'node:url'
import { isAbsolute } from 'node:path'

/** A function as it crosses threads: its source text, or the module export to import. */
export type FunctionRef = { source: string } | { module: string; name: string }

/** The function a FunctionRef names, in this thread. */
export async function loadFunction(t: FunctionRef): Promise<(...args: unknown[]) => unknown> {
  if ('source' in t) return compileFunction(t.source)
  const specifier = isAbsolute(t.module) ? pathToFileURL(t.module).href : t.module
  const mod = (await import(specifier)) as Record<string, unknown>
  const fn = mod[t.name]
  if (typeof fn !== 'function') throw new TypeError(`${t.module} has no exported function '${t.name}'`)
  return fn as (...args: unknown[]) => unknown
}

/** The source of a self-contained function, or a clear error for one that has no usable source. */
export function functionSource(name: string, fn: (...args: any[]) => unknown): string {
  const source = Function.prototype.toString.call(fn)
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(`${name} must be a self-contained function written in JavaScript, not a built-in or bound function; use { module, name } instead`)
  }
  const helper = [...source.matchAll(/\b(__[a-zA-Z]+)\(/g)].map((m) => m[1]).find((h) => !(h in TS_HELPERS) && OTHER_TS_HELPERS.test(h))
  if (helper) {
    throw new TypeError(`${name} calls TypeScript's helper ${helper}, which does not travel with the function's source; compile with "target": "ES2022" or later, or pass { module, name }`)
  }
  return source
}

const OTHER_TS_HELPERS = /^__(awaiter|generator|rest|assign|spreadArray|extends|decorate|esDecorate|runInitializers|classPrivateField\w*)$/

// TypeScript compiles `using` / `await using` below ESNext into calls of two module-level
// helpers, which a function shipped as source no longer sees. These are TypeScript's own helper
// texts (tslib, 0BSD), supplied to the rebuilt function when its source calls them.
const TS_HELPERS: Record<string, string> = {
  __addDisposableResource: "var __addDisposableResource = (this && this.__addDisposableResource) || function (env, value, async) {\n    if (value !== null && value !== void 0) {\n        if (typeof value !== \"object\" && typeof value !== \"function\") throw new TypeError(\"Object expected.\");\n        var dispose, inner;\n        if (async) {\n            if (!Symbol.asyncDispose) throw new TypeError(\"Symbol.asyncDispose is not defined.\");\n            dispose = value[Symbol.asyncDispose];\n        }\n        if (dispose === void 0) {\n            if (!Symbol.dispose) throw new TypeError(\"Symbol.dispose is not defined.\");\n            dispose = value[Symbol.dispose];\n            if (async) inner = dispose;\n        }\n        if (typeof dispose !== \"function\") throw new TypeError(\"Object not disposable.\");\n        if (inner) dispose = function() { try { inner.call(this); } catch (e) { return Promise.reject(e); } };\n        env.stack.push({ value: value, dispose: dispose, async: async });\n    }\n    else if (async) {\n        env.stack.push({ async: true });\n    }\n    return value;\n};",
  __disposeResources: "var __disposeResources = (this && this.__disposeResources) || (function (SuppressedError) {\n    return function (env) {\n        function fail(e) {\n            env.error = env.hasError ? new SuppressedError(e, env.error, \"An error was suppressed during disposal.\") : e;\n            env.hasError = true;\n        }\n        var r, s = 0;\n        function next() {\n            while (r = env.stack.pop()) {\n                try {\n                    if (!r.async && s === 1) return s = 0, env.stack.push(r), Promise.resolve().then(next);\n                    if (r.dispose) {\n                        var result = r.dispose.call(r.value);\n                        if (r.async) return s |= 2, Promise.resolve(result).then(next, function(e) { fail(e); return next(); });\n                    }\n                    else s |= 1;\n                }\n                catch (e) {\n                    fail(e);\n                }\n            }\n            if (s === 1) return env.hasError ? Promise.reject(env.error) : Promise.resolve();\n            if (env.hasError) throw env.error;\n        }\n        return next();\n    };\n})(typeof SuppressedError === \"function\" ? SuppressedError : function (error, suppressed, message) {\n    var e = new Error(message);\n    return e.name = \"SuppressedError\", e.error = error, e.suppressed = suppressed, e;\n});",
}

/** Rebuilds a function from its source; method shorthand (`run() {}`) is accepted too. */
export function compileFunction(source: string): (...args: any[]) => unknown {
  const helpers = Object.keys(TS_HELPERS).filter((name) => source.includes(name)).map((name) => TS_HELPERS[name]).join('\n')
  try {
    return new Function(`${helpers}\nreturn (${source})`)()
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error
    const holder = new Function(`${helpers}\nreturn ({ ${source} })`)() as Record<string, (...args: unknown[]) => unknown>
    return Object.values(holder)[0]
  }
}
