// Synchronous writes to an inherited stdout/stderr from any thread. Node may have made a pipe
// non-blocking, so a full pipe answers EAGAIN: wait a millisecond and go on, never drop output.
import { writeSync } from 'node:fs'

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
