// The README's quick start: a worker process and the main thread share a lock, an event and a
// counter. The worker uses the blocking methods; the main thread awaits the coro_ twins, so its
// event loop keeps running (the ticker below) while it waits.
import { AioEvent, AioLock, AioProcess, AioValue } from '../generated/index.generated.js'

const lock = new AioLock()
const ready = new AioEvent()
const counter = new AioValue('i', 0, { lock: false })

const worker = new AioProcess({
  // Runs in a worker thread: it is shipped as source, so it uses only its arguments.
  target: (lock: AioLock, ready: AioEvent, counter: AioValue<'i'>, n: number) => {
    ready.set()
    for (let i = 0; i < n; i++) {
      using _ = lock.hold() // Python: with lock:
      counter.value += 1
    }
  },
  args: [lock, ready, counter, 100_000],
})
worker.start()

let ticks = 0
const ticker = setInterval(() => ticks++, 1)

await ready.coro_wait()
console.log(`worker ${worker.name} is running (pid ${worker.pid})`)
for (let i = 0; i < 100_000; i++) {
  await using _ = await lock.coro_hold() // Python: async with lock:
  counter.value += 1
}
await worker.coro_join()
clearInterval(ticker)

console.log(`counter = ${counter.value} (expected 200000), worker exitcode = ${worker.exitcode}`)
console.log(`the event loop ticked ${ticks} times while the main thread waited`)
