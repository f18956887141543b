// The user's primitive across threads: workers count down, the main thread waits, in both styles.
import test from 'ava'
import { AioProcess } from 'aioprocessing'
import { CountDownLatch } from './generated/index.generated.js'

for (const style of ['blocking', 'coro'] as const) {
  test(`CountDownLatch: three workers count down, the waiter is released (${style})`, async (t) => {
    const latch = new CountDownLatch(3)
    const workers = [0, 1, 2].map(() => new AioProcess({ target: (l: CountDownLatch) => l.countDown(), args: [latch] }))
    for (const w of workers) w.start()
    t.true(style === 'blocking' ? latch.wait(30_000) : await latch.coro_wait(30_000))
    for (const w of workers) {
      w.join(30_000)
      t.is(w.exitcode, 0)
    }
    t.is(latch.getCount(), 0)
  })
}
