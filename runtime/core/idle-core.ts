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

// The runnable count flickers: on 2 cores a client and its server looking for each other's
// answers are 2, and any third thread (V8's own helpers included) turns the looking off for
// FREE_SAMPLES samples, while it was paying (answers within ~20 µs). So the looks also tell how
// they went: while recent ones found their answer soon, a look goes on even when the count says
// no core is free. When the cores are short, a look is preempted, sees its answer milliseconds
// late, and that stops it at once; it starts again only when the count says a core is free.

/** A look whose answer came later than this (µs, running mean) is not worth the core it takes. */
const SOON_US = 100
/** What a look that found nothing counts as, in µs: as bad as a slow one. */
const NOTHING_US = 1000
/** How much one look moves the mean. */
const WEIGHT = 0.1
let lookUs = Infinity

/** Whether looks are on at all: `AIOPROCESSING_SPIN=0` turns every look off (and the wait core's spin, wait.ts). */
export const LOOKS = process.env.AIOPROCESSING_SPIN !== '0'

/** Whether to look for a peer's answer before sleeping: looks are on, and a core is free or recent looks paid. */
export function lookWorthIt(): boolean {
  return LOOKS && (lookUs < SOON_US || coreFree())
}

/** How a look went: its answer came after `us` µs, or (null) not within the look. */
export function noteLook(us: number | null): void {
  const sample = us === null ? NOTHING_US : us
  lookUs = lookUs === Infinity ? sample : lookUs * (1 - WEIGHT) + sample * WEIGHT
}

/**
 * Calls `found` in a tight loop for up to `ms` while looking pays (lookWorthIt), and notes how the
 * look went: true as soon as `found()` is, false when it never was or looking does not pay. The
 * look of a thread that would otherwise sleep until a peer's answer wakes it (a fast lane's read,
 * wait() on several connections).
 */
export function lookFor(found: () => boolean, ms: number): boolean {
  if (ms <= 0 || !lookWorthIt()) return false
  const start = performance.now()
  const end = start + ms
  do {
    if (found()) {
      noteLook((performance.now() - start) * 1000)
      return true
    }
  } while (performance.now() < end)
  noteLook(null)
  return false
}
