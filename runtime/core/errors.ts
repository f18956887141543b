// The one table of errors. Each class keeps Python's name so ported code reads the same, and
// carries a stable `code` for programmatic checks (Node's ERR_* convention).

const TABLE = {
  ProcessError: ['ERR_AIO_PROCESS', 'process error'],
  TimeoutError: ['ERR_AIO_TIMEOUT', 'the result was not ready in time'],
  BufferTooShort: ['ERR_AIO_BUFFER_TOO_SHORT', 'the buffer is too short for the message'],
  AuthenticationError: ['ERR_AIO_AUTHENTICATION', 'authentication failed'],
  BrokenBarrierError: ['ERR_AIO_BROKEN_BARRIER', 'the barrier is broken'],
  Empty: ['ERR_AIO_EMPTY', 'the queue is empty'],
  Full: ['ERR_AIO_FULL', 'the queue is full'],
  EOFError: ['ERR_AIO_EOF', 'the connection was closed by its peer'],
  ValueError: ['ERR_AIO_VALUE', 'invalid value'],
  RuntimeError: ['ERR_AIO_RUNTIME', 'runtime error'],
  NotImplementedError: ['ERR_AIO_NOT_IMPLEMENTED', 'not implemented'],
  OSError: ['ERR_AIO_OS', 'operating system error'],
  WorkerLostError: ['ERR_AIO_WORKER_LOST', 'the pool worker running this task ended before it finished'],
  PoolTerminatedError: ['ERR_AIO_POOL_TERMINATED', 'the pool was terminated before this task finished'],
  MaybeEncodingError: ['ERR_AIO_ENCODING', 'a task result could not be sent back'],
  PicklingError: ['ERR_AIO_PICKLING', 'the value cannot be pickled'],
  UnpicklingError: ['ERR_AIO_UNPICKLING', 'the pickle is invalid'],
  RemoteError: ['ERR_AIO_REMOTE', 'the manager raised an error'],
} as const

/** Base of every error class below: its name is its class name, its code comes from the table. */
abstract class AioError extends Error {
  readonly code: string
  constructor(message?: string, options?: ErrorOptions) {
    const [code, fallback] = TABLE[new.target.name as keyof typeof TABLE]
    super(message ?? fallback, options)
    this.name = new.target.name
    this.code = code
  }
}

/** Base of the errors that Python's `multiprocessing` raises itself (`ProcessError`). */
export class ProcessError extends AioError {}
/** `multiprocessing.TimeoutError`: a result was not ready in time (AsyncResult.get, imap next). */
export class TimeoutError extends ProcessError {}
/** The buffer given to `recvBytesInto` is too short; `.message` holds the whole message bytes. */
export class BufferTooShort extends ProcessError {}
/** A peer failed the authkey challenge. */
export class AuthenticationError extends ProcessError {}
/** A barrier was aborted, reset or timed out while a party waited, or is broken. */
export class BrokenBarrierError extends AioError {}
/** `queue.Empty`: a non-blocking or timed-out get found nothing. */
export class Empty extends AioError {}
/** `queue.Full`: a non-blocking or timed-out put found no room. */
export class Full extends AioError {}
/** The peer closed the connection and nothing is left to read. */
export class EOFError extends AioError {}
/** Python's `ValueError`: a call that is wrong for the object's state (over-release, closed object). */
export class ValueError extends AioError {}
/** Python's `RuntimeError` (threading flavour): releasing or waiting on a lock this thread does not own. */
export class RuntimeError extends AioError {}
/** Python's `NotImplementedError`: a feature this version does not have yet. */
export class NotImplementedError extends AioError {}
/** Python's `OSError`: a broken or desynchronised connection (bad message length, EOF inside a message), a system out of fds. */
export class OSError extends AioError {}
/**
 * `error` as the caller's own: an OSError that says `what` when the system is out of fds (EMFILE,
 * ENFILE: Python's `OSError: [Errno 24] Too many open files`), Node's error as its cause; else `error`.
 */
export function outOfFds(error: unknown, what: string): unknown {
  const code = (error as { code?: unknown } | null)?.code
  if (code !== 'EMFILE' && code !== 'ENFILE') return error
  return new OSError(`too many open files: ${what} (${(error as Error).message})`, { cause: error })
}
/**
 * A pool worker ended (process.exit, a crash, out of memory) while it ran this task. Only that
 * task fails; tasks queued behind it go to a replacement worker. Python's Pool hangs instead.
 */
export class WorkerLostError extends ProcessError {}
/** The pool was terminated while this task was queued or running (Python's results never become ready). */
export class PoolTerminatedError extends ProcessError {}
/** Python's `MaybeEncodingError`: a task's result could not be serialized to send it back. */
export class MaybeEncodingError extends ProcessError {}
/** Python's `pickle.PicklingError`: a value has no form in a Python pickle (a function, a class instance). */
export class PicklingError extends AioError {}
/** Python's `pickle.UnpicklingError`: a stream is not a pickle this codec reads, or names a global it does not allow. */
export class UnpicklingError extends AioError {}
/**
 * Python's `multiprocessing.managers.RemoteError`: a Python manager raised an exception of a kind
 * that has no class here. `pythonType` names it (`KeyError`), `args` are its arguments and
 * `traceback` is the server's text when it sent one.
 */
export class RemoteError extends AioError {
  pythonType = 'Exception'
  args: unknown[] = []
  traceback: string | undefined
}
