// Whether a core is free for a spin: a thread that polls for a peer's answer instead of sleeping
// (framed-socket.ts watchFor, a fast lane's read in sync-pipe.ts) gains a wake-up's latency only
// while the peer has a core of its own. When runnable threads outnumber the cores, the spinner
// takes the core the peer needs to answer: 4 client processes of one manager on 2 cores made
// 2.5x fewer calls a second spinning than sleeping, 8 made 4x fewer. Success does not show it (the
// spinner is preempted, the peer answers, the spin "saw" the answer), so the machine is asked.
//
// Linux's /proc/loadavg says how many threads are runnable now (its 4th field, "running/total"),
// this one included; read at most every SAMPLE_MS. Where it cannot be read, a core counts as free.

import { closeSync, openSync, readSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const SAMPLE_MS = 2
const FREE_SAMPLES = 3
let streak = FREE_SAMPLES
const CORES = availableParallelism()
const text = Buffer.allocUnsafe(256)
let sampledAt = -Infinity
let free = true
let readable = process.platform === 'linux'

/**
 * True while the runnable threads fit the cores: this one (spinning) and the peer it waits for
 * (waking to answer) each have one. A spin is worth it only then.
 */
export function coreFree(): boolean {
  if (!readable) return true
  const now = performance.now()
  if (now - sampledAt < SAMPLE_MS) return free
  sampledAt = now
  let fd = -1
  try {
    fd = openSync('/proc/loadavg', 'r')
    const n = readSync(fd, text, 0, text.length, 0)
    const running = Number(text.toString('latin1', 0, n).split(' ')[3]?.split('/')[0])
    if (Number.isInteger(running) && running > 0) {
      // Off at once, back on only after FREE_SAMPLES in a row: a sample is a moment, and spinners
      // that all came back on together would fill the cores again.
      streak = running <= CORES ? streak + 1 : 0
      free = streak >= FREE_SAMPLES
    }
    else {
      readable = false
      free = true
    }
  } catch {
    readable = false
    free = true
  } finally {
    if (fd >= 0) closeSync(fd)
  }
  return free
}
