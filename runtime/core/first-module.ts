// How a thread's first module runs its work: as a promise, not under a top-level await. A module
// with a top-level await that starts evaluating as its thread is terminated (process.exit() in
// the parent, a terminate()) fails a V8 check (`location_ != nullptr` in
// SourceTextModule::ExecuteAsyncModule) and takes the whole process down: seen once in ~120
// exits right after a first pool's first result.

/**
 * Runs `work`, and ends the thread as Node ends one whose top-level await never settles: with
 * exitcode 13 (unless it set one) if its event loop runs out while `work` is pending. What `work` throws is the
 * thread's uncaught error, whatever the --unhandled-rejections mode.
 */
export function runAsFirstModule(work: () => Promise<unknown>): void {
  let pending = true
  process.on('beforeExit', () => {
    if (pending && process.exitCode === undefined) process.exitCode = 13
  })
  work().then(
    () => void (pending = false),
    (error: unknown) => {
      pending = false
      process.nextTick(() => {
        throw error
      })
    },
  )
}
