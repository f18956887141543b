// The current process as seen from this thread: Python's current_process() and the child counter
// that names children 'Process-N' (and 'Process-N1:N2' for grandchildren).
import { isMainThread, threadId } from 'node:worker_threads'
import { LIBRARY_LOADED, PENDING_PROCESS } from './loaded-mark.js'

export interface CurrentProcess {
  readonly name: string
  readonly pid: number
  readonly daemon: boolean
  readonly identity: readonly number[]
}

const marks = globalThis as { [LIBRARY_LOADED]?: true; [PENDING_PROCESS]?: CurrentProcess }
marks[LIBRARY_LOADED] = true
let current: CurrentProcess = marks[PENDING_PROCESS] ?? { name: isMainThread ? 'MainProcess' : `Thread-${threadId}`, pid: threadId, daemon: false, identity: [] }
delete marks[PENDING_PROCESS]
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
