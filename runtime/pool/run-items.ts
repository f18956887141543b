// How a pool worker runs one task's items with its function: a call for apply, a call per item
// for map and starmap. Apart from run-task.ts so that a pool thread's first module
// (first-task.ts), which runs a first task before the library has loaded, runs it the
// same way without loading the rest.

// Task modes: what a task's items are and what its result is.
export const MODE_APPLY = 0 // items = [args]: one call fn(...args), the result is its value
export const MODE_MAP = 1 // items = [x...]: fn(x) each, the result is the list
export const MODE_STARMAP = 2 // items = [[...args]...]: fn(...args) each, the result is the list
export type TaskMode = typeof MODE_APPLY | typeof MODE_MAP | typeof MODE_STARMAP

export type TaskFn = (...args: unknown[]) => unknown

/** The task's result: its value, or a promise of it once a call returned a thenable (awaited, item by item, as it comes). */
export function runItems(fn: TaskFn, mode: TaskMode, items: unknown[]): unknown {
  if (mode === MODE_APPLY) return fn(...(items[0] as unknown[]))
  const out = new Array(items.length)
  for (let i = 0; i < items.length; i++) {
    const v = mode === MODE_STARMAP ? fn(...(items[i] as unknown[])) : fn(items[i])
    if (isThenable(v)) return finishItems(fn, mode, items, out, i, v)
    out[i] = v
  }
  return out
}

async function finishItems(fn: TaskFn, mode: TaskMode, items: unknown[], out: unknown[], from: number, pending: PromiseLike<unknown>): Promise<unknown[]> {
  out[from] = await pending
  for (let i = from + 1; i < items.length; i++) {
    let v = mode === MODE_STARMAP ? fn(...(items[i] as unknown[])) : fn(items[i])
    if (isThenable(v)) v = await v
    out[i] = v
  }
  return out
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function'
}
