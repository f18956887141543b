// This process's I/O thread (io-thread.ts), started on first use. Apart from sockets.ts, which
// uses it, so that a spawned process can start it before it loads the library (spawn-bootstrap.ts):
// the thread then boots while the library loads, not after.
import { Worker } from 'node:worker_threads'
import { createWorker } from '../core/exec-argv.js'

let io: Worker | undefined

export function ioThread(): Worker {
  if (!io) {
    io = createWorker((execArgv) => new Worker(new URL('./io-thread.js', import.meta.url), { execArgv }))
    io.on('error', (e) => process.stderr.write(`aioprocessing: the I/O thread failed: ${e.stack ?? e}\n`))
    io.unref()
  }
  return io
}
