// The loop of one worker of a spawn-context AioPool: a process target that reads batches of tasks
// from the socket it inherited (DATA_IN_FD), runs them one at a time, and writes the results to
// another (DATA_OUT_FD).
// In the parent, the supervisor relays them to the pool's shared-memory pipe and wakes the
// pool (ipc/stream-relay.ts), so the pool is the thread pool's, unchanged.
//
// Tasks come in batches (one frame, one wake-up for many); each result is written as its task ends.
//
// Its module, pool-process-worker.ts, only names it. The bundle puts this code in the chunk a
// spawned process's first module imports (build/bundle.mjs PROCESS_CORE), where it registers
// itself as loaded: a pool's worker process then runs it with no import of a module of its own.

import { Socket } from 'node:net'
import { DATA_IN_FD, DATA_OUT_FD } from '../process/spawn-fds.js'
import { MAX_TASK_BYTES } from './pool-protocol.js'
import { MAX_RELAYED_BYTES, framed, messageReader } from '../ipc/framing.js'
import { loadClassModules, missingModules, rebuildTree } from '../core/transfer.js'
import { errorRecord } from '../core/remote-error.js'
import { INIT_FAILED, OP_TASK, POOL_PROCESS_WORKER_TARGET, splitBatch, type ProcessWorkerArgs, type ResultMessage, type SharedMessage, type TaskMessage, type ToWorker } from './pool-protocol.js'
import { TaskRunner, encodeResult, runInitializer } from './run-task.js'
import { registerLoadedFunction } from '../core/source.js'
import { decode, encoded } from '../ipc/serialize.js'

export async function poolProcessWorker(a: ProcessWorkerArgs): Promise<void> {
  const input = new Socket({ fd: DATA_IN_FD, readable: true, writable: false })
  const output = new Socket({ fd: DATA_OUT_FD, readable: false, writable: true })
  input.unref()
  output.unref()
  /** The pool's end is gone (the pool terminated, or its owner ended). */
  let closed = false
  // Each result goes to the pipe before the next task starts, and is in the kernel by then: so a
  // worker that dies loses no answer, and the oldest task the pool has no answer to is the one it
  // was running (worker-slots.ts). A write's callback says when it is there ('drain' comes only
  // after a write the stream refused).
  let unflushed = 0
  let flushed: (() => void) | undefined
  const send = (msg: ResultMessage): void => {
    unflushed++
    output.write(resultFrame(msg, a.stamp), () => {
      if (--unflushed === 0) flushed?.()
    })
  }
  // Waiting for the pool to read keeps the process alive (the sockets are unref'd while a task runs).
  const sent = async (): Promise<void> => {
    if (unflushed === 0 || closed) return
    output.ref()
    await new Promise<void>((resolve) => (flushed = resolve))
    flushed = undefined
    output.unref()
  }
  const end = (): Promise<void> => new Promise((resolve) => output.end(resolve))

  const initError = await runInitializer(a)
  if (initError) {
    // The pool counts these and stops starting workers after a few in a row (dispatch.ts).
    send([INIT_FAILED, false, initError, 0])
    return end()
  }
  // Up: the pool blames a task for this process's end only from now on (worker-slots.ts current()).
  send([INIT_FAILED, true, null, 0])

  // Batches as they arrive; the loop below takes them in order.
  const batches: Buffer[] = []
  let arrived: (() => void) | undefined
  const reader = messageReader(MAX_RELAYED_BYTES, (record) => {
    batches.push(record)
    arrived?.()
  }, () => input.destroy())
  input.on('data', (chunk: Buffer) => void reader.push(chunk))
  input.on('close', () => {
    closed = true
    arrived?.()
  })
  input.on('error', () => undefined) // the pool's end is gone: 'close' follows
  output.on('error', () => undefined) // the same: a result nobody will read

  const runner = new TaskRunner()
  let tasks = 0
  for (;;) {
    if (!batches.length) {
      if (closed) return end()
      // Waiting for tasks keeps the process alive; running one does not, so that a task awaiting
      // a promise that can never settle ends the worker (exitcode 13), as in a thread worker.
      input.ref()
      await new Promise<void>((resolve) => (arrived = resolve))
      arrived = undefined
      input.unref()
      continue
    }
    const record = batches.shift()!
    for (const m of splitBatch(record, 0, record.length)) {
      let message: ToWorker
      try {
        message = Array.isArray(m) ? m : await rebuilt(m)
      } catch (error) {
        // Its shared objects cannot be rebuilt here: the task fails with the reason; the worker goes on.
        send([(m as SharedMessage).taskId, false, errorRecord(error), 0])
        if (a.maxtasks > 0 && ++tasks >= a.maxtasks) return end()
        continue
      }
      const result = await runner.handle(message)
      if (result === 'stop') return end()
      if (!result) continue
      send(result)
      if (a.maxtasks > 0 && ++tasks >= a.maxtasks) return end()
      await sent()
    }
  }
}

/** A task whose items hold proxies (the pool flagged it): their records rebuilt into working proxies in this process. */
async function rebuilt(m: SharedMessage): Promise<TaskMessage> {
  const [, id, fnId, mode, items] = decode(m.bytes) as TaskMessage
  await loadClassModules()
  for (const module of missingModules(items)) await import(module)
  return [OP_TASK, id, fnId, mode, rebuildTree(items) as unknown[]]
}

/** A result as one frame, `stamp` first: encoded in the scratch buffer, copied once into the frame. */
function resultFrame(msg: ResultMessage, stamp: number): Buffer {
  const n = encodeResult(msg, MAX_TASK_BYTES) // first: encoding may replace the scratch buffer with a larger one
  return framed(encoded().subarray(0, n), stamp)
}

registerLoadedFunction(POOL_PROCESS_WORKER_TARGET.module, POOL_PROCESS_WORKER_TARGET.name, poolProcessWorker)
