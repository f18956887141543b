// What every pool worker does with a message, whatever carries it: the thread worker over its
// shared-memory pipe (pool-loop.ts) and the process worker over its inherited pipe
// (pool-process-loop.ts). Only the transport and the way the pool hears of results differ.

import { loadFunction } from '../core/source.js'
import { describeValue } from '../core/args.js'
import { errorRecord, plainRecord, type ErrorRecord } from '../core/remote-error.js'
import { encode } from '../ipc/serialize.js'
import { isThenable, runItems, type TaskFn } from './run-items.js'
import { OP_DEFINE, OP_STOP, OP_TASK, type ResultMessage, type TaskMessage, type ToWorker, type WorkerArgs } from './pool-protocol.js'

/** Runs the pool's initializer; its error record if it threw (the worker then ends). */
export async function runInitializer(a: Pick<WorkerArgs, 'initializer' | 'initargs'>): Promise<ErrorRecord | undefined> {
  if (!a.initializer) return undefined
  try {
    const init = await loadFunction(a.initializer)
    await init(...a.initargs)
    return undefined
  } catch (error) {
    return errorRecord(error)
  }
}

/** A worker's functions, and the running of its tasks. */
export class TaskRunner {
  private readonly fns = new Map<number, TaskFn | { error: unknown }>()

  /**
   * Handles one message: a definition is stored, a task is run and its answer returned; null for
   * a definition, 'stop' for the end.
   */
  async handle(m: ToWorker, started?: (id: number) => void): Promise<ResultMessage | null | 'stop'> {
    if (m[0] === OP_STOP) return 'stop'
    if (m[0] === OP_DEFINE) {
      const [, id, ref] = m
      try {
        this.fns.set(id, await loadFunction(ref))
      } catch (error) {
        this.fns.set(id, { error })
      }
      return null
    }
    if (m[0] !== OP_TASK) throw new Error(`aioprocessing: pool protocol error: unknown message to a worker: ${JSON.stringify(m)}`)
    started?.(m[1])
    return this.run(m)
  }

  private async run([, id, fnId, mode, items]: TaskMessage): Promise<ResultMessage> {
    const t0 = performance.now()
    try {
      const fn = this.fns.get(fnId)!
      if (typeof fn !== 'function') throw fn.error
      let value = runItems(fn, mode, items)
      if (isThenable(value)) value = await value
      return [id, true, value, (performance.now() - t0) * 1000]
    } catch (error) {
      return [id, false, errorRecord(error), (performance.now() - t0) * 1000]
    }
  }
}

/**
 * A result encoded (in the serializer's scratch buffer; its length is returned). One that cannot
 * be encoded becomes Python's MaybeEncodingError: the task fails, the worker goes on; so does one
 * over `limit` bytes (a process pool's, which its relay would take for a broken frame).
 */
export function encodeResult(msg: ResultMessage, limit = Infinity, plain = false): number {
  // A task's error whose fields the transport refuses after all, or that are too large, goes with its plain fields.
  const record = msg[1] ? undefined : (msg[2] as ErrorRecord | undefined)
  const asPlain = (): number => encodeResult([msg[0], false, plainRecord(record!), msg[3]], limit, true)
  let n: number
  try {
    n = encode(msg, 'result')
  } catch (error) {
    if (record?.isError && !plain) return asPlain()
    return unsendable(msg, error instanceof Error ? error.message : String(error))
  }
  if (n <= limit) return n
  if (record?.isError && !plain) return asPlain()
  return unsendable(msg, `it is ${n} bytes encoded, over the ${limit} a result of a process pool's worker may have (a thread pool's has no such limit)`)
}

function unsendable(msg: ResultMessage, reason: string): number {
  return encode([msg[0], false, { name: 'MaybeEncodingError', message: `Error sending result: '${describeValue(msg[2])}'. Reason: '${reason}'`, isError: true }, msg[3]] satisfies ResultMessage, 'result')
}
