// The current process as seen from this thread: Python's current_process() and the child counter
// that names children 'Process-N' (and 'Process-N1:N2' for grandchildren).
import { isMainThread, threadId } from 'node:worker_threads'
import { LIBRARY_LOADED } from './loaded-mark.js'

export interface CurrentProcess {
  readonly name: string
  readonly pid: number
  readonly daemon: boolean
  readonly identity: readonly number[]
}

;(globalThis as { [LIBRARY_LOADED]?: true })[LIBRARY_LOADED] = true

let current: CurrentProcess = { name: isMainThread ? 'MainProcess' : `Thread-${threadId}`, pid: threadId, daemon: false, identity: [] }
let children = 0

/** Python's `current_process()`: name, pid (the thread id in the thread context), daemon flag. */
export function currentProcess(): CurrentProcess {
  return current
}

/** Called by the process bootstrap in a new worker. */
export function setCurrentProcess(p: CurrentProcess): void {
  current = p
}

export function nextChildIdentity(): number[] {
  return [...current.identity, ++children]
}
