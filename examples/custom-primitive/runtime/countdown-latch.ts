// A user-side runtime core: Java's CountDownLatch. wait() blocks until countDown() has been called
// `count` times. The library's wait core and transfer machinery do the rest.
//
// word  name   meaning
// 0     COUNT  what is left to count down; waiters sleep on it while it is above 0
import { park, type Pending, type Waiter } from 'aioprocessing/extend'

const COUNT = 0

export class CountDownLatchCore implements Waiter {
  waitIndex = COUNT
  waitValue = 0
  constructor(readonly i32: Int32Array) {}

  static create(count: number): CountDownLatchCore {
    const i32 = new Int32Array(new SharedArrayBuffer(4))
    i32[COUNT] = count
    return new CountDownLatchCore(i32)
  }
  /** The transfer pair: a cloneable record out, a working core back over the same memory. */
  static rebuild(state: { sab: SharedArrayBuffer }): CountDownLatchCore {
    return new CountDownLatchCore(new Int32Array(state.sab))
  }
  reduce(): { sab: SharedArrayBuffer } {
    return { sab: this.i32.buffer as SharedArrayBuffer }
  }

  countDown(): void {
    for (;;) {
      const n = Atomics.load(this.i32, COUNT)
      if (n === 0) return
      if (Atomics.compareExchange(this.i32, COUNT, n, n - 1) === n) {
        if (n === 1) Atomics.notify(this.i32, COUNT)
        return
      }
    }
  }

  getCount(): number {
    return Atomics.load(this.i32, COUNT)
  }

  /** The attempt behind wait(): done at 0, else sleep on COUNT while it keeps its value. */
  waitAttempt(): true | Pending {
    const n = Atomics.load(this.i32, COUNT)
    return n === 0 ? true : park(this, this.i32, COUNT, n)
  }

  describe(): string {
    return `count=${this.getCount()}`
  }
}
