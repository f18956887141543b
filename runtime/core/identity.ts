// Who "I" am, as stored in owner words: the worker thread id + 1, so that 0 can mean "nobody".
import { threadId, isMainThread } from 'node:worker_threads'

/** This thread's id in owner words (never 0). */
export const SELF = threadId + 1

/** A readable name for an owner word, for `toString()`. */
export function ownerName(owner: number): string {
  if (owner === 0) return 'None'
  if (owner === SELF) return isMainThread ? 'MainThread' : `thread ${threadId} (self)`
  return owner === 1 ? 'MainThread' : `thread ${owner - 1}`
}
