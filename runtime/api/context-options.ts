// Options a context applies to everything that starts code elsewhere: its processes and pools.

/** What a context gives every process and pool it makes (their own options add to it). */
export interface ContextOptions {
  /** Modules imported first in each of its processes and pool workers (`['tsx/esm/api']` for TypeScript targets). */
  preload?: (string | URL)[]
}

type Make = (options?: { preload?: (string | URL)[] }) => unknown

/** `ctx` (a frozen context) with `o` applied to the processes and pools it makes; `ctx` itself without options. */
export function withContextOptions<C extends object>(ctx: C, o: ContextOptions): C {
  if (!o.preload?.length) return ctx
  const preload = [...o.preload]
  const made = { ...ctx } as Record<string, unknown>
  for (const name of ['AioProcess', 'AioPool']) {
    const make = (ctx as Record<string, Make | undefined>)[name]
    if (make) made[name] = (options: { preload?: (string | URL)[] } = {}) => make({ ...options, preload: [...preload, ...(options.preload ?? [])] })
  }
  return Object.freeze(made) as C
}
