// Functions cross thread boundaries as source text: a process target, a barrier action. They must
// be self-contained (no variables from the enclosing scope); `{ module, name }` covers the rest.

/** The source of a self-contained function, or a clear error for one that has no usable source. */
export function functionSource(name: string, fn: (...args: any[]) => unknown): string {
  const source = Function.prototype.toString.call(fn)
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(`${name} must be a self-contained function written in JavaScript, not a built-in or bound function; use { module, name } instead`)
  }
  return source
}

/** Rebuilds a function from its source; method shorthand (`run() {}`) is accepted too. */
export function compileFunction(source: string): (...args: any[]) => unknown {
  try {
    return new Function(`return (${source})`)()
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error
    const holder = new Function(`return ({ ${source} })`)() as Record<string, (...args: unknown[]) => unknown>
    return Object.values(holder)[0]
  }
}
