// The quick start as plain JavaScript for Node 20, which cannot parse `using`: with() and
// coro_with() hold the lock around a function instead (Python's `with lock:` / `async with lock:`).
// Run it with `node examples/quickstart.mjs` after `npm run build`.
import { AioEvent, AioLock, AioProcess, AioValue } from 'aioprocessing'

const lock = new AioLock()
const ready = new AioEvent()
const counter = new AioValue('i', 0, { lock: false })

const worker = new AioProcess({
  // Runs in a worker thread: it is shipped as source, so it uses only its arguments.
  target: (lock, ready, counter, n) => {
    ready.set()
    for (let i = 0; i < n; i++) {
      lock.with(() => {
        counter.value += 1
      })
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
  await lock.coro_with(() => {
    counter.value += 1
  })
}
await worker.coro_join()
clearInterval(ticker)

console.log(`counter = ${counter.value} (expected 200000), worker exitcode = ${worker.exitcode}`)
console.log(`the event loop ticked ${ticks} times while the main thread waited`)
