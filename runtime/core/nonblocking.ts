// System calls on non-blocking fds, for the paths that look for a peer's answer before they sleep
// (ipc/framed-socket.ts readNow, manager/sync-pipe.ts). Node throws when such a call would block
// (EAGAIN), and its Error captures a stack each time: a few µs, paid on every look, where an
// answer comes within tens of µs. These return -1 instead and capture no stack for it.

import { readSync, writeSync, writevSync } from 'node:fs'

/** A call that would block, or was interrupted: look again. */
function wouldBlock(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code
  return code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR'
}

/** Runs `io` with no stack captured for an error; one that is not EAGAIN (or EINTR) is thrown with its stack. */
function attempt(io: () => number): number {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return io()
  } catch (error) {
    if (wouldBlock(error)) return -1
    Error.stackTraceLimit = limit
    if (error instanceof Error) Error.captureStackTrace(error, attempt)
    throw error
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** fs.readSync on a non-blocking fd: the bytes read (0 at end of input), or -1 when nothing is there yet. */
export function tryReadSync(fd: number, into: Uint8Array, at: number, length: number): number {
  return attempt(() => readSync(fd, into, at, length, null))
}

/** fs.writeSync on a non-blocking fd: the bytes written, or -1 when it has no room yet. */
export function tryWriteSync(fd: number, from: Uint8Array, at: number, length: number): number {
  return attempt(() => writeSync(fd, from, at, length))
}

/** fs.writevSync on a non-blocking fd: the bytes written, or -1 when it has no room yet. */
export function tryWritevSync(fd: number, buffers: readonly NodeJS.ArrayBufferView[]): number {
  return attempt(() => writevSync(fd, buffers))
}
