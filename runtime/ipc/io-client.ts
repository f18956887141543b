// This process's I/O thread (io-thread.ts), which runs the sockets of Listener and Client
// (sockets.ts) and, where the kernel does not, watches a spawned process's parent. Apart from
// sockets.ts, so that a spawned process's first module starts it without loading the sockets' code.
import { outOfFds } from '../core/errors.js'
import type { IoMessage } from './io-protocol.js'
import { killAtEnd } from './parent-death.js'
import { Worker } from 'node:worker_threads'
import { createWorker } from '../core/exec-argv.js'
import { libraryFile } from '../core/library-file.js'

let io: Worker | undefined

/**
 * This process's I/O thread (io-thread.ts), started on first use. Out of fds it cannot start, and
 * says so only in an 'error' event, which a thread blocked on its answer never sees: so the fds
 * are looked for first, and their absence is an OSError here.
 */
export function ioThread(): Worker {
  if (!io) {
    const main = libraryFile(new URL('./io-thread.js', import.meta.url), 'start the I/O thread that sockets need')
    try {
      io = createWorker((execArgv) => new Worker(main, { execArgv }))
    } catch (error) {
      throw outOfFds(error, 'the I/O thread cannot start')
    }
    io.on('error', (e) => process.stderr.write(`aioprocessing: the I/O thread failed: ${e.stack ?? e}\n`))
    io.unref()
  }
  return io
}

/**
 * Ends this process (SIGKILL) once `fd` reads end-of-file: the parent holds the other end of that
 * pipe, and the kernel closes it however the parent ends, SIGKILL included. The I/O thread watches
 * it, so a main thread blocked in Atomics.wait cannot delay it.
 *
 * `kernel`: the kernel itself sends this process SIGKILL when its parent ends (PR_SET_PDEATHSIG,
 * set before it ran node: supervisor-thread.ts). Only a parent that ended before that was set is
 * left to see, which this thread's event loop does as it starts: no I/O thread boots, which made
 * a first spawned process ~9 ms and a first process pool ~12 ms slower to their first message.
 */
export function exitWithParent(fd: number, kernel = false): void {
  if (kernel) killAtEnd(fd).unref()
  else ioThread().postMessage({ op: 'exitWithParent', fd } satisfies IoMessage)
}
