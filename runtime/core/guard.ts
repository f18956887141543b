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
