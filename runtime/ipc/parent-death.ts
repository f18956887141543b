// How a spawned process ends with its parent: it holds one end of a pipe whose other end only its
// parent holds (PARENT_FD, spawn-fds.ts), and the kernel closes that end however the
// parent ends, SIGKILL included. Run by whichever thread watches the pipe: the I/O thread
// (io-thread.ts), or the main thread's event loop when the kernel already sends the signal
// (sockets.ts exitWithParent).

import net from 'node:net'

/** Kills this process (SIGKILL) once `fd` reads end-of-file or fails. */
export function killAtEnd(fd: number): net.Socket {
  const pipe = new net.Socket({ fd, readable: true, writable: false })
  const die = (): void => void process.kill(process.pid, 'SIGKILL')
  pipe.on('end', die).on('close', die).on('error', die)
  return pipe.resume()
}
