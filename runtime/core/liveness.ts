// Which threads have ended, for the queues' robust internal locks: a thread that dies inside a
// queue's critical section (terminate() can stop it at any instruction) must not wedge the queue.
//
// One byte per thread id (0 = alive or unknown, 1 = ended), in a SharedArrayBuffer that the first
// thread of a tree creates and every process it starts inherits. Supervisors mark a worker ended
// when its 'exit' event arrives. Thread ids beyond the table, and threads this library did not
// start, always read as alive: a lock held by them is never taken away.

const SIZE = 1 << 16
let table: Uint8Array | undefined

/** The shared table, created on first use in a tree's first thread. */
export function livenessTable(): SharedArrayBuffer {
  table ??= new Uint8Array(new SharedArrayBuffer(SIZE))
  return table.buffer as SharedArrayBuffer
}

/** Called by a process bootstrap: share the parent's table instead of starting a new one. */
export function installLivenessTable(sab: SharedArrayBuffer): void {
  table = new Uint8Array(sab)
}

export function markEnded(threadId: number, sab: SharedArrayBuffer): void {
  if (threadId < SIZE) Atomics.store(new Uint8Array(sab), threadId, 1)
}

/** True once the thread whose owner word is `owner` (thread id + 1) has ended. */
export function ownerEnded(owner: number): boolean {
  const id = owner - 1
  return owner !== 0 && table !== undefined && id < SIZE && Atomics.load(table, id) === 1
}
