// Synchronous writes to an inherited stdout/stderr from any thread. Node may have made a pipe
// non-blocking, so a full pipe answers EAGAIN: wait a millisecond and go on, never drop output.
// node:fs is got, not imported: a pool thread's first module (pool/first-task.ts) writes through
// this before it loads the library, and in a fresh thread an ES import of node:fs (and of
// node:path and node:url, function-load.ts) cost ~0.8 ms of module facades before a pool's first
// task; process.getBuiltinModule (Node 20.16) hands Node's own module over at no cost.
const { writeSync } = process.getBuiltinModule('node:fs')

const nap = new Int32Array(new SharedArrayBuffer(4))

export function writeAllSync(fd: number, data: string | Uint8Array): void {
  let buf = typeof data === 'string' ? Buffer.from(data) : data
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
      Atomics.wait(nap, 0, 0, 1)
    }
  }
}

/**
 * A child thread writes straight to the inherited stdout/stderr, as a Python child does: through
 * the parent's streams its output would wait for the parent's event loop, and come after whatever
 * the parent prints once a blocking join() returns.
 */
export function writeStdioDirectly(): void {
  for (const [stream, fd] of [[process.stdout, 1], [process.stderr, 2]] as const) {
    stream.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error) => void), cb?: (e?: Error) => void) => {
      writeAllSync(fd, typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : chunk)
      ;(typeof encoding === 'function' ? encoding : cb)?.()
      return true
    }) as typeof stream.write
  }
}
