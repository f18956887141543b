// Functions cross thread boundaries as source text: a process target, a barrier action. They must
// be self-contained (no variables from the enclosing scope); `{ module, name }` covers the rest.
// The sender checks them (function-source.ts); this module rebuilds them where they run, and
// imports the modules that `{ module, name }` and a process's preload name.

import { MAY_CALL_HELPER, compileFunction, importModule, loadExport, type FunctionRef } from './function-load.js'

export { compileFunction, importModule, type FunctionRef }

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
  return loadExport(t)
}

/** Runs the modules a process preloads, in order; one that exports register() has it called (tsx/esm/api). */
export async function preloadModules(specifiers: readonly string[] = []): Promise<void> {
  for (const specifier of specifiers) {
    const mod = (await importModule(specifier)) as { register?: () => unknown }
    if (typeof mod.register === 'function') await mod.register()
  }
}

/**
 * The helper texts `source` needs (compiler-helpers.ts), loaded only for a function that may call
 * one: they are ~24 KB that a fresh thread would compile first.
 */
async function helpersOf(source: string): Promise<string> {
  return MAY_CALL_HELPER.test(source) ? (await import('./compiler-helpers.js')).helpersFor(source) : ''
}
