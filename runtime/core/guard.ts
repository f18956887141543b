import { checkFunction } from './args.js'
// The object `using` / `await using` disposes: runs `exit` once, however often it is disposed.
export function guard(exit: () => void): AsyncDisposable & Disposable {
  let held = true
  const dispose = (): void => {
    if (held) {
      held = false
      exit()
    }
  }
  return { [Symbol.dispose]: dispose, [Symbol.asyncDispose]: async () => dispose() }
}

/**
 * Python's `with x:` without `using` (plain JavaScript on Node 20 cannot parse it): `enter()`, then
 * `body()`, then `exit()` however the body ends; returns what the body returned. A body that
 * returns a promise is refused (its exit would come before the promise settles) and exits at once.
 */
export function holding<R>(enter: () => unknown, exit: () => void, body: () => R): R {
  checkFunction('body', body)
  enter()
  try {
    const r = body()
    if (r instanceof Promise) throw new TypeError('with() runs a synchronous body: the release would come before the promise settles; use coro_with() for an async one')
    return r
  } finally {
    exit()
  }
}

/** Python's `async with x:` without `await using`: awaits `enter()`, awaits `body()`, then `exit()` however it ends. */
export async function coroHolding<R>(enter: () => Promise<unknown>, exit: () => void, body: () => R | Promise<R>): Promise<Awaited<R>> {
  checkFunction('body', body)
  await enter()
  try {
    return await body()
  } finally {
    exit()
  }
}
