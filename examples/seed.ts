// The example of Python's aioprocessing README, ported: a worker takes the lock, sets the event
// and puts item + 5 for items 1..5; the main side awaits coro_get; a second coroutine waits for
// the event, then for the lock, and puts 78 and a null sentinel.
import { AioEvent, AioLock, AioProcess, AioQueue } from '../generated/index.generated.js'

function func(queue: AioQueue<number | null>, event: AioEvent, lock: AioLock, items: number[]): void {
  // Runs in a worker thread: put some items on the queue, pausing between them.
  using _ = lock.hold()
  event.set()
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (const item of items) {
    Atomics.wait(pause, 0, 0, 200) // time.sleep(0.2)
    queue.put(item + 5)
  }
  queue.close()
}

async function example(queue: AioQueue<number | null>, event: AioEvent, lock: AioLock): Promise<void> {
  const l = [1, 2, 3, 4, 5]
  const p = new AioProcess({ target: func, args: [queue, event, lock, l] })
  p.start()
  for (;;) {
    const result = await queue.coro_get()
    if (result === null) break
    console.log(`Got result ${result}`)
  }
  await p.coro_join()
}

async function example2(queue: AioQueue<number | null>, event: AioEvent, lock: AioLock): Promise<void> {
  await event.coro_wait()
  await using _ = await lock.coro_hold()
  await queue.coro_put(78)
  await queue.coro_put(null) // Shut down the worker
}

const queue = new AioQueue<number | null>()
const lock = new AioLock()
const event = new AioEvent()
await Promise.all([example(queue, event, lock), example2(queue, event, lock)])
