// The pool ⇄ worker wire: the shared words both ends touch, the messages in each direction and
// the batch framing. The pool (pool.ts and its parts) and the worker loop (pool-loop.ts) import
// only this module for the wire, so that neither end imports the other.

import type { FunctionRef } from '../core/source.js'
import type { ErrorRecord } from '../core/remote-error.js'
import { decode } from '../ipc/serialize.js'

/** The target a pool's worker threads run (worker-slots.ts): pool-loop.ts's loop, named by pool-worker.ts. */
export const POOL_WORKER_TARGET = { module: new URL('./pool-worker.js', import.meta.url).href, name: 'poolWorker' } as const
/** The target a spawn-context pool's worker processes run: pool-process-loop.ts's loop, named by pool-process-worker.ts. */
export const POOL_PROCESS_WORKER_TARGET = { module: new URL('./pool-process-worker.js', import.meta.url).href, name: 'poolProcessWorker' } as const

export { CURRENT, DONE, EV, LOW_WATER, POOL_WORDS, READY, SENT, WAITING, WORKER_WORDS } from './pool-words.js'

// Messages to a worker.
export const OP_DEFINE = 0
export const OP_TASK = 1
export const OP_STOP = 2

export { MODE_APPLY, MODE_MAP, MODE_STARMAP, type TaskMode } from './run-items.js'
import type { TaskMode } from './run-items.js'

/** Function `fnId` is `ref`: sent to a worker once, before its first task that calls it. */
export type DefineMessage = [op: typeof OP_DEFINE, fnId: number, ref: FunctionRef]
export type TaskMessage = [op: typeof OP_TASK, taskId: number, fnId: number, mode: TaskMode, items: unknown[]]
/** The worker ends after the messages before it (a pipe's end reads as one too). */
export type StopMessage = [op: typeof OP_STOP]
export type ToWorker = DefineMessage | TaskMessage | StopMessage

/** A worker's answer to one task, in task order; `micros` is the task's run time. */
export type ResultMessage =
  | [taskId: number, ok: true, value: unknown, micros: number]
  | [taskId: number, ok: false, error: ErrorRecord, micros: number]
  | InitFailedMessage
/**
 * The most bytes one task's message, or one result, of a process pool may have: a record its
 * relay passes is at most MAX_RELAYED_BYTES (stream-relay.ts), frames and a batch's other
 * messages included. A thread pool's have no such limit.
 */
export const MAX_TASK_BYTES = Number(process.env.AIOPROCESSING_TEST_MAX_TASK_BYTES) || (1 << 30) - (1 << 20) // smaller in a test, which cannot send 1 GiB

/**
 * Task ids start at 1: id 0 says the initializer threw, as the worker's last message before it
 * ends; or, from a process pool's worker, with ok true, that its initializer ran (a thread's
 * READY word says it): one that ends before is not up, and its tasks were not run.
 */
export const INIT_FAILED = 0
export type InitFailedMessage = [taskId: typeof INIT_FAILED, ok: false, error: ErrorRecord, micros: 0] | [taskId: typeof INIT_FAILED, ok: true, value: null, micros: 0]

/** A worker's process argument: its pipe's rings, the two word buffers, and the pool's settings. */
export interface WorkerArgs {
  rx: SharedArrayBuffer
  tx: SharedArrayBuffer
  words: SharedArrayBuffer
  events: SharedArrayBuffer
  initializer: FunctionRef | null
  initargs: unknown[]
  maxtasks: number
}

/** A spawn-context worker's process argument: the pool's settings (its sockets are DATA_IN_FD and DATA_OUT_FD, relayed by the supervisor). */
export type ProcessWorkerArgs = Pick<WorkerArgs, 'initializer' | 'initargs' | 'maxtasks'> & {
  /**
   * Starts each frame the worker writes, after its length (stream-relay.ts RelayEnds.stamp): bytes
   * a task writes into the worker's results socket are caught at once instead of read as a frame.
   */
  stamp: number
}

// A record from the pool is a batch, so that many tasks cost one commit and one wake-up: messages
// back to back, each a u32 length and its encoded bytes. The length's top bit says the message
// carries shared objects: then a u32 task id follows, and the worker (started without the
// library's classes, to start sooner) keeps the bytes and decodes them once it has loaded them.
// The id stands outside the encoded bytes, so that a task whose arguments cannot be rebuilt in the
// worker fails with the reason instead of killing every worker that tries it.
export const SHARED_FLAG = 0x80000000

/** A task message that carries shared objects, kept as bytes until the classes are loaded. */
export interface SharedMessage {
  readonly taskId: number
  readonly bytes: Buffer
}

/** One record of encoded messages; `sharedIds[i]`, when not 0, is the id of task message i, which carries shared objects. */
export function frameBatch(messages: Buffer[], sharedIds?: number[]): Buffer {
  let size = 0
  for (let i = 0; i < messages.length; i++) size += 4 + messages[i].length + (sharedIds?.[i] ? 4 : 0)
  const record = Buffer.allocUnsafe(size)
  let at = 0
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]
    const id = sharedIds?.[i] ?? 0
    record.writeUInt32LE((m.length | (id ? SHARED_FLAG : 0)) >>> 0, at)
    at += 4
    if (id) {
      record.writeUInt32LE(id, at)
      at += 4
    }
    m.copy(record, at)
    at += m.length
  }
  return record
}

/** The messages of a record in bytes[start, end): decoded, or kept as bytes when they carry shared objects. */
export function splitBatch(bytes: Buffer, start: number, end: number): (ToWorker | SharedMessage)[] {
  const out: (ToWorker | SharedMessage)[] = []
  for (let at = start; at < end; ) {
    const word = bytes.readUInt32LE(at)
    const n = (word & ~SHARED_FLAG) >>> 0
    at += 4
    if (word & SHARED_FLAG) {
      const taskId = bytes.readUInt32LE(at)
      at += 4
      out.push({ taskId, bytes: Buffer.from(bytes.subarray(at, at + n)) })
    } else out.push(decode(bytes, at, at + n) as ToWorker)
    at += n
  }
  return out
}
