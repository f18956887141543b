// The one table of errors. Each class keeps Python's name so ported code reads the same, and
// carries a stable `code` for programmatic checks (Node's ERR_* convention).

/** Base of the errors that Python's `multiprocessing` raises itself (`ProcessError`). */
export class ProcessError extends Error {
  code = 'ERR_AIO_PROCESS'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** `multiprocessing.TimeoutError`: a result was not ready in time (AsyncResult.get, imap next). */
export class TimeoutError extends ProcessError {
  override code = 'ERR_AIO_TIMEOUT'
}

/** The buffer given to `recvBytesInto` is too short; `.message` holds the whole message bytes. */
export class BufferTooShort extends ProcessError {
  override code = 'ERR_AIO_BUFFER_TOO_SHORT'
}

/** A peer failed the authkey challenge. */
export class AuthenticationError extends ProcessError {
  override code = 'ERR_AIO_AUTHENTICATION'
}

/** A barrier was aborted, reset or timed out while a party waited, or is broken. */
export class BrokenBarrierError extends Error {
  code = 'ERR_AIO_BROKEN_BARRIER'
  constructor(message = 'the barrier is broken', options?: ErrorOptions) {
    super(message, options)
    this.name = 'BrokenBarrierError'
  }
}

/** `queue.Empty`: a non-blocking or timed-out get found nothing. */
export class Empty extends Error {
  code = 'ERR_AIO_EMPTY'
  constructor(message = 'the queue is empty', options?: ErrorOptions) {
    super(message, options)
    this.name = 'Empty'
  }
}

/** `queue.Full`: a non-blocking or timed-out put found no room. */
export class Full extends Error {
  code = 'ERR_AIO_FULL'
  constructor(message = 'the queue is full', options?: ErrorOptions) {
    super(message, options)
    this.name = 'Full'
  }
}

/** The peer closed the connection and nothing is left to read. */
export class EOFError extends Error {
  code = 'ERR_AIO_EOF'
  constructor(message = 'the connection was closed by its peer', options?: ErrorOptions) {
    super(message, options)
    this.name = 'EOFError'
  }
}

/** Python's `ValueError`: a call that is wrong for the object's state (over-release, closed object). */
export class ValueError extends Error {
  code = 'ERR_AIO_VALUE'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ValueError'
  }
}

/** Python's `RuntimeError` (threading flavour): releasing or waiting on a lock this thread does not own. */
export class RuntimeError extends Error {
  code = 'ERR_AIO_RUNTIME'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'RuntimeError'
  }
}

/** Python's `NotImplementedError`: a feature this version does not have yet. */
export class NotImplementedError extends Error {
  code = 'ERR_AIO_NOT_IMPLEMENTED'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'NotImplementedError'
  }
}
