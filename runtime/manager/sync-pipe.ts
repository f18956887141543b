// The fast lane for blocking proxy calls of a process's main thread to a manager server on the
// same machine (an AioManager's, or the spawn context's broker): a pair of named pipes (FIFOs) that the client reads and writes with blocking system
// calls (fs.readSync/fs.writeSync), so a call needs no other thread of the client: a request is
// one write, its answer one read, as in Python's Connection. The server reads and writes its ends
// in its event loop (manager-server.ts). Frames are a u32 little-endian length, then the bytes.
//
// The FIFOs live in a private folder of the server (mode 0700) and are unlinked once both ends
// are open. The client's read end sees end-of-file when the server process is gone; the server
// learns that the client is gone from the client's socket connection, to which this lane belongs.

import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs'
import { EOFError } from '../core/errors.js'
import { frame } from '../ipc/stream-relay.js'

export class SyncPipe {
  private readonly header = Buffer.allocUnsafe(4)
  private closed = false

  private constructor(private readonly out: number, private readonly in_: number) {}

  /**
   * Opens the client's ends of the FIFOs the server made (`request` it reads, `answer` it writes):
   * neither open waits, since the server holds its ends open already.
   */
  static open(request: string, answer: string): SyncPipe {
    const in_ = openSync(answer, constants.O_RDONLY)
    try {
      return new SyncPipe(openSync(request, constants.O_WRONLY), in_)
    } catch (error) {
      closeSync(in_)
      throw error
    }
  }

  /** Writes one frame, all of it (a large one waits for the server to read). */
  sendBytes(payload: Uint8Array): void {
    const bytes = frame(payload)
    for (let at = 0; at < bytes.length; ) at += writeSync(this.out, bytes, at, bytes.length - at)
  }

  /** Reads one frame, blocking the thread until it is whole; EOFError once the server is gone. */
  recv(): Buffer {
    this.fill(this.header)
    const payload = Buffer.allocUnsafe(this.header.readUInt32LE(0))
    this.fill(payload)
    return payload
  }

  private fill(buf: Buffer): void {
    for (let at = 0; at < buf.length; ) {
      const n = readSync(this.in_, buf, at, buf.length - at, null)
      if (n === 0) throw new EOFError('the manager closed the connection')
      at += n
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    closeSync(this.out)
    closeSync(this.in_)
  }
}
