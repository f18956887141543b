// Child process for bench/queues.ts's memory figures: `node --expose-gc queue-memory.js <mode> <count>
// <timeoutMs>` prints one JSON line. A fresh process per measurement, so nothing the other
// benchmarks left on the heap (or in malloc's free lists) blurs the deltas.
//
// idle   <count> unbounded queues created and kept: memory deltas per queue, after gc.
// held   <count> × 1 MiB put with no consumer (each goes to the feeder's backlog in the supervisor
//        thread), then all got back: process RSS before, while held, and after draining.

import { setTimeout as sleep } from 'node:timers/promises'
import { AioQueue } from '../generated/index.generated.js'

const MIB = 1 << 20
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('queue-memory.js needs node --expose-gc')

/** Several full collections with turns of the event loop between them (finalizers, freed backing stores). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc!()
    await sleep(20)
  }
}

const [mode, countArg, timeoutArg] = process.argv.slice(2)
const count = Number(countArg)
const timeoutMs = Number(timeoutArg)

if (mode === 'idle') {
  // Warm up first: module code, JIT and the first SharedArrayBuffers are not what is measured.
  for (let i = 0; i < 50; i++) new AioQueue()
  await settle()
  const m0 = process.memoryUsage()
  const kept = Array.from({ length: count }, () => new AioQueue())
  await settle()
  const m1 = process.memoryUsage()
  if (kept.some((q) => q.qsize() !== 0)) throw new Error('an idle queue is not empty')
  console.log(JSON.stringify({
    rss: m1.rss - m0.rss,
    heapUsed: m1.heapUsed - m0.heapUsed,
    external: m1.external - m0.external,
    arrayBuffers: m1.arrayBuffers - m0.arrayBuffers,
  }))
} else if (mode === 'held') {
  const q = new AioQueue<Uint8Array>()
  const item = new Uint8Array(MIB).fill(7)
  // A first put/get pair starts the supervisor thread, so the baseline includes it.
  q.put(item, true, timeoutMs)
  if (q.get(true, timeoutMs).length !== MIB) throw new Error('warm-up item is wrong')
  await settle()
  const base = process.memoryUsage().rss
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    item[0] = i & 255 // put() copies the item, so the buffer is reused
    q.put(item, true, timeoutMs)
  }
  const putMs = performance.now() - t0
  // The records reach the supervisor as messages: give it a moment to have taken them all in.
  await sleep(500)
  const held = process.memoryUsage().rss
  const t1 = performance.now()
  for (let i = 0; i < count; i++) {
    const v = q.get(true, timeoutMs)
    if (v.length !== MIB || v[0] !== (i & 255) || v[1] !== 7) throw new Error(`item ${i} is wrong`)
  }
  const drainMs = performance.now() - t1
  if (q.qsize() !== 0) throw new Error(`qsize() is ${q.qsize()} after draining`)
  await sleep(1000)
  await settle()
  // gc() collects this thread's heap only: what the supervisor thread still holds shows here.
  const drained = process.memoryUsage().rss
  console.log(JSON.stringify({ base, held, drained, putMs, drainMs, maxRss: process.resourceUsage().maxRSS * 1024 }))
} else {
  throw new Error(`unknown mode ${mode}`)
}
