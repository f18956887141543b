// The fds and first argument of a spawned process (spawn-main.ts), as the supervisor starts it
// (start-process.ts). Apart from supervisor-protocol.ts: the supervisor's first module imports
// this and not the protocol, which every thread loads.

/**
 * A spawned process's fd of the parent-death pipe: the supervisor keeps the other end open for the
 * child's life, so it reads end-of-file only when the parent process is gone (spawn-main.ts).
 */
export const PARENT_FD = 4

/**
 * A spawned process's first argument when the kernel ends it with its parent: the supervisor ran
 * it through util-linux's `setpriv --pdeathsig KILL`, which sets PR_SET_PDEATHSIG and runs node.
 * Then it needs no I/O thread to watch PARENT_FD (sockets.ts exitWithParent).
 */
export const KERNEL_WATCH_ARG = '--aioprocessing-pdeathsig'

/**
 * A spawned process's fds of its data pipes with the supervisor, which relays them to a
 * shared-memory pipe of the process that started it (SpawnMessage.relay): a spawn-context pool
 * worker reads its tasks from DATA_IN_FD and writes its results to DATA_OUT_FD. Unused, and never
 * read, in other processes.
 *
 * Two sockets, each used one way, not one both ways: a process that dies with tasks it had not
 * read makes the kernel reset the socket that reads its results (ECONNRESET), and a write to a
 * dead process fails (EPIPE); either error destroyed a shared socket in the supervisor before it
 * had read every result the process wrote before it died, and its pool then blamed a task that
 * had succeeded. The results' socket is never written to, so it reads every result, then its end.
 */
export const DATA_IN_FD = 5
export const DATA_OUT_FD = 6
